package nexo

import (
	"encoding/json"
	"testing"
)

func TestFormatMinor(t *testing.T) {
	for _, c := range []struct {
		minor int64
		exp   int
		want  Decimal
	}{
		{1099, 2, "10.99"}, {5, 2, "0.05"}, {100, 2, "1.00"}, {0, 2, "0.00"}, {500, 0, "500"},
		{1234, 3, "1.234"}, {-1099, 2, "-10.99"}, {9007199254740993, 2, "90071992547409.93"},
	} {
		if got := FormatMinor(c.minor, c.exp); got != c.want {
			t.Errorf("FormatMinor(%d, %d)=%s, want %s", c.minor, c.exp, got, c.want)
		}
		back, err := c.want.Minor(c.exp)
		if err != nil || back != c.minor {
			t.Errorf("%s.Minor(%d)=%d, %v; want %d", c.want, c.exp, back, err, c.minor)
		}
	}
	// Amounts go out as JSON numbers, exactly: 2^53+1 minor units would
	// not survive a float64.
	b, _ := json.Marshal(AmountsReq{Currency: "EUR", RequestedAmount: FormatMinor(9007199254740993, 2)})
	if got, want := string(b), `{"Currency":"EUR","RequestedAmount":90071992547409.93}`; got != want {
		t.Fatalf("json %s, want %s", got, want)
	}
}

func TestDecimalLenient(t *testing.T) {
	for in, want := range map[string]int64{`1`: 100, `"1"`: 100, `10.99`: 1099, `"10.990"`: 1099, `0.1`: 10} {
		var d Decimal
		if err := json.Unmarshal([]byte(in), &d); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if n, err := d.Minor(2); err != nil || n != want {
			t.Errorf("%s → %d, %v; want %d", in, n, err, want)
		}
	}
	for _, in := range []string{`1e2`, `"abc"`, `true`, `"1.2.3"`, `"."`} {
		var d Decimal
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("%s accepted as %q", in, d)
		}
	}
	if _, err := Decimal("10.999").Minor(2); err == nil {
		t.Error("10.999 EUR accepted: a fraction of a cent")
	}
	if _, err := Decimal("99999999999999999999").Minor(2); err == nil {
		t.Error("overflow accepted")
	}
	// Real terminals send these as strings, the OpenAPI as numbers.
	var cd struct {
		POIReconciliationID Text
		CardCountryCode     Text
		KeyVersion          Int
	}
	if err := json.Unmarshal([]byte(`{"POIReconciliationID":"1000","CardCountryCode":826,"KeyVersion":"1"}`), &cd); err != nil {
		t.Fatal(err)
	}
	if cd.POIReconciliationID != "1000" || cd.CardCountryCode != "826" || cd.KeyVersion != 1 {
		t.Fatalf("%+v", cd)
	}
}

func FuzzDecimal(f *testing.F) {
	for _, s := range []string{`10.99`, `"1"`, `-0.5`, `1e3`, `"0001.2300"`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var d Decimal
		if json.Unmarshal([]byte(in), &d) != nil || d == "" {
			return
		}
		n, err := d.Minor(2)
		if err != nil {
			return
		}
		// What converts exactly renders back to the same value.
		if m, err := FormatMinor(n, 2).Minor(2); err != nil || m != n {
			t.Fatalf("%s → %d → %s → %d", d, n, FormatMinor(n, 2), m)
		}
	})
}
