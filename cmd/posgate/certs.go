package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/posgate/posgate/apikey"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/store"
)

// runCerts manages taxpayer certificates by writing the store directly,
// like runKeys, so it works before any API key exists and while the
// daemon runs. The PKCS#12 password is never taken on the command line
// (other users can read it there): it comes from an environment variable
// or a file.
func runCerts(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("certs: want import, list, show or deactivate")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("certs "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs, getenv)
	p12 := fs.String("p12", "", "PKCS#12 (.p12/.pfx) `file` to import")
	pwEnv := fs.String("password-env", "POSGATE_CERT_PASSWORD", "environment `variable` holding the PKCS#12 password")
	pwFile := fs.String("password-file", "", "`file` holding the PKCS#12 password (instead of --password-env)")
	certFile := fs.String("cert", "", "PEM certificate `file` to import (with --key)")
	keyFile := fs.String("key", "", "unencrypted PEM private key `file` to import (with --cert)")
	label := fs.String("label", "", "a name for the certificate (default: its subject CN)")
	tin := fs.String("tin", "", "taxpayer number, if the certificate's subject does not carry it")
	bind := fs.String("bind", "", "API key `id` to bind to the imported certificate")
	asJSON := fs.Bool("json", false, "print JSON")
	// Accept the ID before or after the flags: "show ID --json" and
	// "show --json ID".
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	db, mk, err := openStoreAndKey(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	certs := fiscal.NewCertificates(db, fiscal.CertificatesOptions{Master: mk})
	show := func(c fiscal.Certificate) error {
		if *asJSON {
			return json.NewEncoder(stdout).Encode(c)
		}
		printCertificate(stdout, c)
		return nil
	}

	switch sub {
	case "import":
		p := fiscal.ImportParams{Label: *label, TIN: *tin}
		switch {
		case *p12 != "":
			if p.PKCS12, err = os.ReadFile(*p12); err != nil {
				return fmt.Errorf("certs import: %w", err)
			}
			if p.Password, err = readPassword(*pwFile, *pwEnv, getenv); err != nil {
				return fmt.Errorf("certs import: %w", err)
			}
		case *certFile != "" && *keyFile != "":
			c, err := os.ReadFile(*certFile)
			if err != nil {
				return fmt.Errorf("certs import: %w", err)
			}
			k, err := os.ReadFile(*keyFile)
			if err != nil {
				return fmt.Errorf("certs import: %w", err)
			}
			p.CertificatePEM, p.PrivateKeyPEM = string(c), string(k)
		default:
			return errors.New("certs import: give --p12 FILE (password in $POSGATE_CERT_PASSWORD or --password-file), or --cert FILE --key FILE")
		}
		c, err := certs.Import(ctx, p)
		if err != nil {
			return fmt.Errorf("certs import: %w", err)
		}
		if *bind != "" {
			keys := apikey.New(db, mk)
			if err := db.InTx(ctx, func(tx *sql.Tx) error { return keys.BindCertificateTx(ctx, tx, *bind, c.ID) }); err != nil {
				return fmt.Errorf("certs import: certificate %s imported, but binding key %s failed: %w", c.ID, *bind, err)
			}
		}
		if !*asJSON {
			fmt.Fprintf(stdout, "imported %s\n", c.ID)
			if *bind != "" {
				fmt.Fprintf(stdout, "API key %s now signs with it\n", *bind)
			}
		}
		return show(c)
	case "list":
		list, err := certs.List(ctx)
		if err != nil {
			return fmt.Errorf("certs list: %w", err)
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(list)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tTIN\tSERIAL\tNOT AFTER\tLABEL")
		for _, c := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Status, c.TIN, c.Serial, c.NotAfter.Format(time.DateOnly), c.Label)
		}
		return tw.Flush()
	case "show", "deactivate":
		if id == "" {
			return fmt.Errorf("certs %s: want a certificate ID", sub)
		}
		var c fiscal.Certificate
		if sub == "show" {
			c, err = certs.Get(ctx, id)
		} else {
			c, err = certs.Deactivate(ctx, id)
		}
		if err != nil {
			return fmt.Errorf("certs %s %s: %w", sub, id, err)
		}
		if sub == "deactivate" && !*asJSON {
			fmt.Fprintf(stdout, "deactivated %s: it signs nothing from now on\n", c.ID)
		}
		return show(c)
	default:
		return fmt.Errorf("certs: unknown subcommand %q; want import, list, show or deactivate", sub)
	}
}

// readPassword reads the PKCS#12 password from file, else from the
// environment variable env. A trailing newline in the file is not part
// of it.
func readPassword(file, env string, getenv func(string) string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return getenv(env), nil
}

// openStoreAndKey opens the store and the master key as serve does, for
// the subcommands that write the store directly (keys, certs).
func openStoreAndKey(ctx context.Context, cfg Config) (*store.DB, *masterkey.Key, error) {
	db, err := store.Open(ctx, cfg.DBPath(), store.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	mk, err := masterkey.LoadOrCreate(cfg.MasterKeyPath())
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, mk, nil
}

// printCertificate shows a certificate to a person.
func printCertificate(w io.Writer, c fiscal.Certificate) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\t%s\n", c.ID)
	fmt.Fprintf(tw, "Label\t%s\n", c.Label)
	fmt.Fprintf(tw, "Status\t%s\n", c.Status)
	fmt.Fprintf(tw, "Subject\t%s\n", c.Subject)
	fmt.Fprintf(tw, "Issuer\t%s\n", c.Issuer)
	fmt.Fprintf(tw, "TIN\t%s\n", c.TIN)
	fmt.Fprintf(tw, "Serial\t%s\n", c.Serial)
	fmt.Fprintf(tw, "SHA-256\t%s\n", c.Thumbprint)
	fmt.Fprintf(tw, "Key\t%s\n", c.KeyType)
	fmt.Fprintf(tw, "Valid\t%s to %s\n", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
	tw.Flush()
}
