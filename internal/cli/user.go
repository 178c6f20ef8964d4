package cli

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"gatehouse/internal/admin"
)

// maxPasswordLen bounds a password read from standard input.
const maxPasswordLen = 1024

func userPath(name string) string { return "/admin/v1/users/" + escape(name) }

func newUserCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage the local users who log in to the gateway (through the admin API)",
	}
	f := addAdminFlags(cmd)
	cmd.AddCommand(
		newUserCreateCmd(f),
		newUserSetPasswordCmd(f),
		newUserDisabledCmd(f, true),
		newUserDisabledCmd(f, false),
		newUserListCmd(f),
	)
	return cmd
}

func newUserCreateCmd(f *adminFlags) *cobra.Command {
	var groups []string
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "create NAME [--group GROUP]... [--password-stdin]",
		Short: "Create a local user; the password is prompted for, or read from standard input",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd, fromStdin)
			if err != nil {
				return err
			}
			var u admin.User
			req := admin.CreateUserRequest{Username: args[0], Password: pw, Groups: groups}
			if done, err := f.do(cmd, http.MethodPost, "/admin/v1/users", nil, req, &u); err != nil || done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created user %s%s.\n", u.Username, groupNote(u.Groups))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&groups, "group", nil, "a group the user belongs to (repeat for several)")
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

func groupNote(groups []string) string {
	if len(groups) == 0 {
		return ""
	}
	return " (groups: " + strings.Join(groups, ", ") + ")"
}

func newUserSetPasswordCmd(f *adminFlags) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "set-password NAME [--password-stdin]",
		Short: "Replace a user's password",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd, fromStdin)
			if err != nil {
				return err
			}
			if done, err := f.do(cmd, http.MethodPut, userPath(args[0])+"/password", nil, admin.SetPasswordRequest{Password: pw}, nil); err != nil || done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Password of %s changed.\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

// newUserDisabledCmd returns "user disable" or "user enable".
func newUserDisabledCmd(f *adminFlags, disable bool) *cobra.Command {
	use, short, state := "enable", "Let a disabled user log in again", "enabled"
	if disable {
		use, short, state = "disable", "Stop a user from logging in", "disabled"
	}
	return &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if done, err := f.do(cmd, http.MethodPatch, userPath(args[0]), nil, admin.UpdateUserRequest{Disabled: &disable}, nil); err != nil || done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "User %s is %s.\n", args[0], state)
			return nil
		},
	}
}

func newUserListCmd(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List local users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var users []admin.User
			if done, err := f.do(cmd, http.MethodGet, "/admin/v1/users", nil, nil, &users); err != nil || done {
				return err
			}
			if len(users) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No users.")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USERNAME\tGROUPS\tSTATUS\tCREATED\tUPDATED")
			for _, u := range users {
				groups, status := "-", "active"
				if len(u.Groups) > 0 {
					groups = strings.Join(u.Groups, ",")
				}
				if u.Disabled {
					status = "disabled"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Username, groups, status, formatTime(u.CreatedAt), formatTime(u.UpdatedAt))
			}
			return tw.Flush()
		},
	}
}

// readPassword gets a new password: prompted for twice, without echo, when
// standard input is a terminal and --password-stdin is not given; else the
// first line of standard input (for scripts: printf '%s\n' "$PW" | …).
func readPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	if fd, tty := stdinTerminal(cmd); tty && !fromStdin {
		errOut := cmd.ErrOrStderr()
		fmt.Fprint(errOut, "Password (at least 12 characters): ")
		first, err := term.ReadPassword(fd)
		fmt.Fprintln(errOut)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		fmt.Fprint(errOut, "Repeat the password: ")
		second, err := term.ReadPassword(fd)
		fmt.Fprintln(errOut)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		if string(first) != string(second) {
			return "", errors.New("the passwords do not match")
		}
		if len(first) == 0 {
			return "", errors.New("no password given")
		}
		return string(first), nil
	}
	pw, err := readLine(cmd, maxPasswordLen)
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("no password on standard input (give it on the first line, or run on a terminal to be prompted)")
	}
	return pw, nil
}
