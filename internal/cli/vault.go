package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"gatehouse/internal/admin"
	"gatehouse/internal/vault"
)

// This file holds the commands for key material: the vault's secrets and
// the token-signing keys.

func newVaultCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vault",
		Short: "Manage upstream credentials in the encrypted vault (through the admin API)",
		Long: `Manage the upstream credentials (API keys, tokens) that the gateway keeps
encrypted in its vault and injects into upstream requests. Values are never
read back: the vault only hands them to the gateway.`,
	}
	f := addAdminFlags(cmd)
	cmd.AddCommand(newVaultPutCmd(f), newVaultListCmd(f), newVaultDeleteCmd(f), newVaultRotateCmd(f))
	return cmd
}

// secretTarget is the path and query of a vault entry.
func secretTarget(name, agent string) (string, url.Values) {
	var q url.Values
	if agent != "" {
		q = url.Values{"agent": {agent}}
	}
	return "/admin/v1/vault/secrets/" + escape(name), q
}

func describeEntry(name, agent string) string {
	if agent == "" {
		return fmt.Sprintf("secret %s (shared)", name)
	}
	return fmt.Sprintf("secret %s for agent %s", name, agent)
}

func newVaultPutCmd(f *adminFlags) *cobra.Command {
	var agent, file string
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "put NAME [--agent AGENT] (--value-stdin | --from-file FILE)",
		Short: "Store a secret (never given on the command line)",
		Long: `Store a secret in the vault, shared by every agent or, with --agent, for one
agent only. The value comes from standard input (--value-stdin; one trailing
newline is dropped) or a file (--from-file; used byte for byte), never from
the command line, where the process list and shell history would show it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			value, err := readSecretValue(cmd, fromStdin, file)
			if err != nil {
				return err
			}
			req := admin.VaultPutRequest{Value: value}
			if body, err := json.Marshal(req); err == nil && len(body) > admin.MaxBodyBytes {
				return fmt.Errorf("the value is too large: as JSON the request is %d bytes, over the admin API's limit of %d", len(body), admin.MaxBodyBytes)
			}
			path, q := secretTarget(args[0], agent)
			var e admin.VaultEntry
			if done, err := f.do(cmd, http.MethodPut, path, q, req, &e); err != nil || done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Stored %s, version %d.\n", describeEntry(e.Name, e.Agent), e.Version)
			return nil
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "the agent the secret is for (default: shared by all)")
	cmd.Flags().BoolVar(&fromStdin, "value-stdin", false, "read the value from standard input")
	cmd.Flags().StringVar(&file, "from-file", "", "read the value from this file")
	cmd.MarkFlagsMutuallyExclusive("value-stdin", "from-file")
	cmd.MarkFlagsOneRequired("value-stdin", "from-file")
	return cmd
}

// readSecretValue reads a vault value from standard input or a file. The
// API carries values as JSON strings, so they must be UTF-8 text.
func readSecretValue(cmd *cobra.Command, fromStdin bool, file string) (string, error) {
	var raw []byte
	var err error
	if fromStdin {
		raw, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), vault.MaxValueSize+2))
		if err != nil {
			return "", fmt.Errorf("reading the value from standard input: %w", err)
		}
		// What "echo $TOKEN |" adds is not part of the secret.
		s := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
		raw = []byte(s)
	} else {
		raw, err = os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading the value: %w", err)
		}
	}
	switch {
	case len(raw) == 0:
		return "", errors.New("the value is empty")
	case len(raw) > vault.MaxValueSize:
		return "", fmt.Errorf("the value is larger than %d bytes", vault.MaxValueSize)
	case !utf8.Valid(raw):
		return "", errors.New("the value is not UTF-8 text: encode binary values (e.g. base64) before storing them")
	}
	return string(raw), nil
}

func newVaultListCmd(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the vault's secrets: names, agents, versions, never values",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var entries []admin.VaultEntry
			if done, err := f.do(cmd, http.MethodGet, "/admin/v1/vault/secrets", nil, nil, &entries); err != nil || done {
				return err
			}
			if len(entries) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "The vault is empty.")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tAGENT\tVERSION\tKEK\tUPDATED")
			for _, e := range entries {
				agent := e.Agent
				switch {
				case e.AgentID == "":
					agent = "(shared)"
				case agent == "":
					agent = e.AgentID + " (unknown agent)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", e.Name, agent, e.Version, e.KEKID, formatTime(e.UpdatedAt))
			}
			return tw.Flush()
		},
	}
}

func newVaultDeleteCmd(f *adminFlags) *cobra.Command {
	var agent string
	cmd := &cobra.Command{
		Use:   "delete NAME [--agent AGENT]",
		Short: "Delete a secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, q := secretTarget(args[0], agent)
			if done, err := f.do(cmd, http.MethodDelete, path, q, nil, nil); err != nil || done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted %s.\n", describeEntry(args[0], agent))
			return nil
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "the agent the secret is for (default: the shared entry)")
	return cmd
}

func newVaultRotateCmd(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Re-wrap every secret with the primary key-encryption key",
		Long: `Re-wrap the data key of every secret still wrapped by a previous
key-encryption key with the primary one. Run it after configuring every
replica with the new key as primary and the old one as previous; then the
old key can be removed. Values are not decrypted; running it twice is safe.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res admin.VaultRotateResponse
			if done, err := f.do(cmd, http.MethodPost, "/admin/v1/vault/rotate", nil, nil, &res); err != nil || done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Re-wrapped %d secrets with the primary key-encryption key.\n", res.Rewrapped)
			return nil
		},
	}
}

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the gateway's token-signing keys (through the admin API)",
	}
	f := addAdminFlags(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate",
		Short: "Create a new signing key: published now, signing after the overlap",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res admin.KeyRotateResponse
			if done, err := f.do(cmd, http.MethodPost, "/admin/v1/keys/rotate", nil, nil, &res); err != nil || done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "New signing key %s: published in the JWKS now, signing after the configured overlap; the current key retires then.\n", res.KID)
			return nil
		},
	})
	return cmd
}
