package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"gatehouse/internal/admin"
)

// The management commands (agent, team, user, vault, keys) are clients of
// a running gateway's admin API, so they act on the shared store through
// whichever replica they reach, and every replica learns of the change.

// Environment variables that supply the admin flags' defaults. The token
// belongs in the environment rather than on the command line, where other
// users of the machine can read it in the process list.
const (
	envAdminURL   = "GATEHOUSE_ADMIN_URL"
	envAdminToken = "GATEHOUSE_ADMIN_TOKEN"
	// defaultAdminURL is the gateway's default listen address.
	defaultAdminURL = "http://127.0.0.1:8080"
	// defaultAdminTokenFile is where a gateway started without a
	// configured admin token writes the one it generates (the default of
	// admin.token_file), so that the CLI works with no setup on the
	// gateway's own machine.
	defaultAdminTokenFile = "gatehouse-data/admin-token"
)

// adminFlags are the persistent flags of a management command group.
type adminFlags struct {
	url   string
	token string
	json  bool
}

// addAdminFlags declares the admin flags on a command group. Defaults from
// the environment are read when a command runs, not here, so that help
// output never shows the token.
func addAdminFlags(cmd *cobra.Command) *adminFlags {
	f := &adminFlags{}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.url, "admin-url", "", "the gateway's base URL (default $"+envAdminURL+", else "+defaultAdminURL+")")
	pf.StringVar(&f.token, "admin-token", "", "the admin token (default $"+envAdminToken+", else the file "+defaultAdminTokenFile+"; prefer those: flags show in the process list)")
	pf.BoolVar(&f.json, "json", false, "print the API's JSON response instead of text")
	return f
}

// client returns an admin API client from the flags and the environment.
func (f *adminFlags) client(cmd *cobra.Command) (*adminClient, error) {
	base := f.url
	if base == "" {
		base = os.Getenv(envAdminURL)
	}
	if base == "" {
		base = defaultAdminURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--admin-url %q: want http(s)://host[:port][/path]", base)
	}
	token := f.token
	if token == "" {
		token = os.Getenv(envAdminToken)
	}
	if token == "" {
		token, err = readTokenFile(defaultAdminTokenFile)
		if err != nil {
			return nil, err
		}
	}
	if token == "" {
		return nil, errors.New("no admin token: set " + envAdminToken + ", pass --admin-token, or run where " + defaultAdminTokenFile + " is")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: sending the admin token to %s over plain http\n", u.Host)
	}
	return &adminClient{
		base:  strings.TrimRight(u.String(), "/"),
		token: token,
		hc: &http.Client{
			// Team rotations and password hashing take a moment; a
			// gateway that does not answer in a minute is not going to.
			Timeout: time.Minute,
			// A redirect would resend the token and could turn a PUT
			// into a GET; the admin API never redirects.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// readTokenFile reads an admin token file; a missing file is no token.
func readTokenFile(path string) (string, error) {
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("reading the admin token: %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// adminClient calls the admin API.
type adminClient struct {
	base  string
	token string
	hc    *http.Client
}

// apiError is an error response of the admin API; its message is the
// API's, which is what the user sees.
type apiError struct {
	status  int
	code    string
	message string
	body    []byte
}

func (e *apiError) Error() string { return e.message }

// call sends in (nil: no body; json.RawMessage: as is) to path (already
// escaped) and decodes the response into out (if not nil). It returns the
// raw response body, for --json.
func (c *adminClient) call(ctx context.Context, method, path string, query url.Values, in, out any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		body = bytes.NewReader(raw)
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// The URL error names the URL, which holds no secret.
		return nil, fmt.Errorf("cannot reach the gateway's admin API: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the admin API's response: %w", err)
	}
	if resp.StatusCode >= 300 {
		return raw, responseError(resp, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("decoding the admin API's response: %w", err)
		}
	}
	return raw, nil
}

// responseError turns an unsuccessful response into an error.
func responseError(resp *http.Response, raw []byte) error {
	var eb admin.ErrorBody
	if json.Unmarshal(raw, &eb) == nil && eb.Error.Message != "" {
		return &apiError{status: resp.StatusCode, code: eb.Error.Code, message: eb.Error.Message, body: raw}
	}
	// Not the API's error shape: something else answered.
	hint := ""
	switch {
	case resp.StatusCode == http.StatusNotFound:
		hint = " (is the admin API enabled? It needs admin.token in the gateway's configuration)"
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		hint = " (a redirect: check --admin-url)"
	}
	snippet := strings.TrimSpace(string(raw))
	if len(snippet) > 200 {
		snippet = snippet[:200] + "…"
	}
	if snippet != "" {
		snippet = ": " + snippet
	}
	return fmt.Errorf("the gateway answered %s%s%s", resp.Status, hint, snippet)
}

// escape escapes one path segment ("/" too, so names keep their exact
// spelling: the server unescapes them).
func escape(s string) string { return url.PathEscape(s) }

// printJSON writes a response body indented, for --json.
func printJSON(w io.Writer, raw []byte) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		_, err = w.Write(raw)
		return err
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// stdinTerminal returns the file descriptor of the command's input when it
// is a terminal.
func stdinTerminal(cmd *cobra.Command) (int, bool) {
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// readLine reads one line of the command's input, without its line ending.
func readLine(cmd *cobra.Command, max int) (string, error) {
	r := bufio.NewReaderSize(io.LimitReader(cmd.InOrStdin(), int64(max)+2), 4096)
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if len(line) > max {
		return "", fmt.Errorf("the line on standard input is longer than %d bytes", max)
	}
	return line, nil
}

// confirm asks a yes/no question on standard error and reads the answer
// from standard input; anything but "y" or "yes" (including no input at
// all) is no.
func confirm(cmd *cobra.Command, question string) (bool, error) {
	fmt.Fprintf(cmd.ErrOrStderr(), "%s [y/N] ", question)
	answer, err := readLine(cmd, 64)
	if err != nil {
		return false, err
	}
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes", nil
}

// formatDuration prints whole hours and minutes without trailing zero
// units ("24h", "90m" → "1h30m").
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatTime prints a time for tables, in the local zone.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// do runs one API call for a command: with --json it prints the response
// body and reports done, so the caller prints text only when !done.
func (f *adminFlags) do(cmd *cobra.Command, method, path string, query url.Values, in, out any) (done bool, err error) {
	c, err := f.client(cmd)
	if err != nil {
		return false, err
	}
	raw, err := c.call(cmd.Context(), method, path, query, in, out)
	var ae *apiError
	if err != nil && f.json && errors.As(err, &ae) {
		// The error body may carry more than the message (a failed team
		// rotation returns the secrets it made); the message also goes
		// to standard error.
		_ = printJSON(cmd.OutOrStdout(), raw)
	}
	if err != nil {
		return false, err
	}
	if f.json {
		return true, printJSON(cmd.OutOrStdout(), raw)
	}
	return false, nil
}
