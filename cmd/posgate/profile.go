package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/fiscal/bg"
	"github.com/posgate/posgate/fiscal/iic"
	"github.com/posgate/posgate/fiscal/me"
	"github.com/posgate/posgate/fiscal/none"
)

// countryProfile is everything fiscal.country decides: the profile, the
// zone invoice years restart in, and the VAT rates (with their fiscal
// printer groups) accepted when no fiscal printer reports its own.
type countryProfile struct {
	fiscal.Profile
	Location  *time.Location
	VATGroups map[int64]int
}

// profileDeps are what a profile takes from the running daemon; nil
// members while the configuration is validated.
type profileDeps struct {
	// Width is the receipt line width of the printer that prints.
	Width int
	// DeviceSerial reads the fiscal printer's serial number.
	DeviceSerial func(ctx context.Context) (string, error)
}

// newProfile is the one place that names the countries (STYLE §8): a
// new country is a package under fiscal/ and a case here.
func newProfile(f FiscalConfig, deps profileDeps) (countryProfile, error) {
	var (
		cp   countryProfile
		zone string
		err  error
	)
	switch f.Country {
	case "me", "al":
		zone = map[string]string{"me": "Europe/Podgorica", "al": "Europe/Tirane"}[f.Country]
		if cp.Location, err = time.LoadLocation(zone); err != nil {
			return cp, fmt.Errorf("fiscal time zone: %w", err)
		}
		scheme, err := iic.New(iic.Options{Country: f.Country, Environment: f.Environment, VerifyURL: f.VerifyURL, Location: cp.Location})
		if err != nil {
			return cp, fmt.Errorf("fiscal scheme: %w", err)
		}
		cp.Profile = me.NewCountry(me.CountryOptions{Name: f.Country, Scheme: scheme, Width: deps.Width})
		cp.VATGroups = map[int64]int{2100: 1, 700: 2, 0: 3}
		if f.Country == "al" {
			cp.VATGroups = map[int64]int{2000: 1, 1000: 2, 600: 3, 0: 4}
		}
		return cp, nil
	case "bg":
		if cp.Location, err = time.LoadLocation("Europe/Sofia"); err != nil {
			return cp, fmt.Errorf("fiscal time zone: %w", err)
		}
		serial := deps.DeviceSerial
		if serial == nil {
			serial = func(context.Context) (string, error) { return "", fiscal.ErrPrinterUnavailable }
		}
		if cp.Profile, err = bg.New(bg.Options{Operator: f.Operator, DeviceSerial: serial}); err != nil {
			return cp, &ConfigError{Key: "fiscal.operator", Value: strconv.Quote(f.Operator), Err: err}
		}
		// Datecs' Bulgarian programming: A 0 %, B 20 %, G 9 %.
		cp.VATGroups = map[int64]int{0: 1, 2000: 2, 900: 4}
		return cp, nil
	case "none":
		cp.Profile, cp.Location = none.Profile{}, time.Local
		cp.VATGroups = map[int64]int{2100: 1, 700: 2, 0: 3}
		return cp, nil
	}
	return cp, &ConfigError{Key: "fiscal.country", Value: strconv.Quote(f.Country), Err: fmt.Errorf(`want "me", "al", "bg" or "none"`)}
}

// checkProfile refuses a configuration that does not fit the profile's
// requirements, naming the key.
func checkProfile(c Config, req fiscal.Requirements) error {
	country := c.Fiscal.Country
	bad := func(key string, val any, format string, args ...any) error {
		return &ConfigError{Key: key, Value: val, Err: fmt.Errorf(format, args...)}
	}
	if !req.Registration && c.Fiscal.ServiceURL != "" {
		return bad("fiscal.service_url", strconv.Quote(c.Fiscal.ServiceURL), "posgate registers the invoices of country %q with no tax service (docs/profile-*.md); remove the key", country)
	}
	if !req.Certificate && c.Fiscal.VerifyURL != "" {
		return bad("fiscal.verify_url", strconv.Quote(c.Fiscal.VerifyURL), "country %q signs nothing, so there is nothing to verify; remove the key", country)
	}
	if req.OperatorPattern != "" && !regexp.MustCompile(req.OperatorPattern).MatchString(c.Fiscal.Operator) {
		return bad("fiscal.operator", strconv.Quote(c.Fiscal.Operator), "country %q needs the operator code of its unique sale numbers (%s)", country, req.OperatorPattern)
	}
	if req.PrinterRequired && len(c.Printers) == 0 {
		return bad("printers", "[]", "country %q needs a printer (%s)", country, printerKindName(req.Printer))
	}
	if len(c.Printers) > 0 && req.Printer != fiscal.PrinterAny {
		// The first printer prints the receipts.
		if kind := printerKind(c.Printers[0].Protocol); kind != req.Printer {
			return bad("printers[0].protocol", strconv.Quote(c.Printers[0].Protocol), "country %q prints on %s", country, printerKindName(req.Printer))
		}
	}
	return nil
}

// printerKind is the fiscal printer kind of a printer protocol.
func printerKind(protocol string) string {
	if protocol == "escpos" {
		return fiscal.PrinterReceipt
	}
	return fiscal.PrinterFiscal
}

func printerKindName(kind string) string {
	switch kind {
	case fiscal.PrinterReceipt:
		return `a receipt printer, protocol "escpos"`
	case fiscal.PrinterFiscal:
		return `a fiscal printer, protocol "datecs-x"`
	}
	return "any printer"
}
