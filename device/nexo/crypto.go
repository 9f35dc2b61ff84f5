package nexo

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// AdyenCryptoVersion 1 (research/nexo.md R2): PBKDF2-HMAC-SHA1 over the
// passphrase with this salt and iteration count gives 80 bytes, split into
// the HMAC key, the AES key and the IV base.
const (
	kdfSalt       = "AdyenNexoV1Salt"
	kdfIterations = 4000
	cryptoVersion = 1
	nonceLen      = 16
)

// ErrCrypto is the one error for anything wrong with a sealed message:
// bad base64, length, padding, nonce or MAC. Telling them apart would give
// an attacker a CBC padding oracle.
var ErrCrypto = errors.New("nexo: message does not decrypt or verify")

// ErrPassphrase means a passphrase is empty or not ASCII. Adyen's
// libraries derive different keys from non-ASCII passphrases (Node reads
// them as Latin-1, Java and iOS as UTF-8), so posgate refuses them.
var ErrPassphrase = errors.New("nexo: passphrase must be non-empty printable ASCII")

// Key is the key material derived from one passphrase. Derive it once
// and keep it: 4000 PBKDF2 rounds per message would be wasted work.
type Key struct {
	ID      string // KeyIdentifier, as configured on the terminal
	Version int    // KeyVersion
	hmacKey [32]byte
	aesKey  [32]byte
	ivBase  [16]byte
}

// DeriveKey derives the key material for id/version from passphrase.
func DeriveKey(passphrase, id string, version int) (*Key, error) {
	if err := CheckPassphrase(passphrase); err != nil {
		return nil, err
	}
	dk, err := pbkdf2.Key(sha1.New, passphrase, []byte(kdfSalt), kdfIterations, 80)
	if err != nil {
		return nil, fmt.Errorf("derive nexo key: %w", err)
	}
	k := &Key{ID: id, Version: version}
	copy(k.hmacKey[:], dk[0:32])
	copy(k.aesKey[:], dk[32:64])
	copy(k.ivBase[:], dk[64:80])
	clear(dk)
	return k, nil
}

// CheckPassphrase refuses a passphrase posgate cannot derive a key from
// the way every Adyen library does: empty, or with a byte outside
// printable ASCII.
func CheckPassphrase(p string) error {
	if p == "" {
		return ErrPassphrase
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] > 0x7e {
			return ErrPassphrase
		}
	}
	return nil
}

// seal encrypts plaintext with nonce and returns the ciphertext and the
// HMAC-SHA256 of the plaintext (Adyen MACs the plaintext, not the
// ciphertext).
func (k *Key) seal(plaintext []byte, nonce [nonceLen]byte) (ct, mac []byte) {
	block, _ := aes.NewCipher(k.aesKey[:]) // a 32-byte key cannot fail
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	ct = make([]byte, len(plaintext)+pad)
	copy(ct, plaintext)
	copy(ct[len(plaintext):], bytes.Repeat([]byte{byte(pad)}, pad))
	iv := k.iv(nonce)
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(ct, ct)
	m := hmac.New(sha256.New, k.hmacKey[:])
	m.Write(plaintext)
	return ct, m.Sum(nil)
}

// open decrypts ct and checks mac. Every failure is ErrCrypto.
func (k *Key) open(ct, nonce, mac []byte) ([]byte, error) {
	if len(nonce) != nonceLen || len(ct) == 0 || len(ct)%aes.BlockSize != 0 || len(mac) != sha256.Size {
		return nil, ErrCrypto
	}
	block, _ := aes.NewCipher(k.aesKey[:])
	iv := k.iv([nonceLen]byte(nonce))
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(pt, ct)
	// Unpad without branching on which check failed; the MAC check below
	// runs whatever the padding said, so both cost the same.
	pad := int(pt[len(pt)-1])
	good := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, aes.BlockSize)
	n := len(pt) - aes.BlockSize
	if good == 1 {
		n = len(pt) - pad
	}
	for i := len(pt) - aes.BlockSize; i < len(pt); i++ {
		inPad := subtle.ConstantTimeLessOrEq(n, i)
		good &= subtle.ConstantTimeSelect(inPad, subtle.ConstantTimeByteEq(pt[i], byte(pad)), 1)
	}
	m := hmac.New(sha256.New, k.hmacKey[:])
	m.Write(pt[:n])
	good &= subtle.ConstantTimeCompare(m.Sum(nil), mac)
	if good != 1 {
		return nil, ErrCrypto
	}
	return pt[:n], nil
}

// iv is the IV of one message: the derived IV base XOR its nonce.
func (k *Key) iv(nonce [nonceLen]byte) [16]byte {
	var iv [16]byte
	for i := range iv {
		iv[i] = k.ivBase[i] ^ nonce[i]
	}
	return iv
}
