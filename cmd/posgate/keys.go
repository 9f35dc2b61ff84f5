package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/posgate/posgate/apikey"
)

// runKeys manages API keys by writing the store directly, so the first
// admin key can be made before any key exists. It may run while the
// daemon serves: the store is shared safely through SQLite's locks, and a
// revocation applies to the daemon's very next request.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("keys: want create, list or revoke")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs, getenv)
	label := fs.String("label", "", "a name for the key, e.g. the till it belongs to")
	role := fs.String("role", "pos", "admin or pos")
	cert := fs.String("certificate", "", "certificate `id` to bind")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if sub == "create" {
		// Refuse bad flags before touching the store.
		p := apikey.NewParams{Label: *label, Role: *role}
		if err := p.Validate(); errors.Is(err, apikey.ErrInvalidLabel) {
			return errors.New("keys create: --label is required (1 to 100 characters)")
		} else if err != nil {
			return fmt.Errorf("keys create: --role %q: want admin or pos", *role)
		}
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
	keys := apikey.New(db, mk)

	switch sub {
	case "create":
		created, err := keys.Create(ctx, apikey.NewParams{Label: *label, Role: *role, CertificateID: *cert})
		if err != nil {
			return fmt.Errorf("keys create: %w", err)
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(created)
		}
		printCreatedKey(stdout, created, cfg.Listen)
		return nil
	case "list":
		list, err := keys.List(ctx)
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(list)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCLIENT ID\tROLE\tLABEL\tCREATED\tREVOKED")
		for _, k := range list {
			revoked := "-"
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.Format("2006-01-02T15:04:05Z")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.ClientID, k.Role, k.Label,
				k.CreatedAt.Format("2006-01-02T15:04:05Z"), revoked)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("keys revoke: want exactly one key ID")
		}
		k, err := keys.Revoke(ctx, fs.Arg(0))
		if err != nil {
			return fmt.Errorf("keys revoke %s: %w", fs.Arg(0), err)
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(k)
		}
		fmt.Fprintf(stdout, "revoked %s (%s)\n", k.ID, k.Label)
		return nil
	default:
		return fmt.Errorf("keys: unknown subcommand %q; want create, list or revoke", sub)
	}
}

// printCreatedKey shows a new key to a person, with a curl line to try.
func printCreatedKey(w io.Writer, c apikey.Created, listen string) {
	fmt.Fprintf(w, "API key %s (%s, role %s)\n", c.ID, c.Label, c.Role)
	fmt.Fprintf(w, "  X-Api-Key: %s:%s\n", c.ClientID, c.ClientSecret)
	fmt.Fprintln(w, "  The secret is shown only now; store it in the cashier software's configuration.")
	// A pos key may not list keys (403): it tries a route any key may call.
	route := "/v1/devices"
	if c.Role == apikey.RoleAdmin {
		route = "/v1/api-keys"
	}
	fmt.Fprintf(w, "  Try: curl -s -H 'X-Api-Key: %s:%s' http://%s%s\n", c.ClientID, c.ClientSecret, listen, route)
}
