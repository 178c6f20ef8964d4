package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// StdioConfig describes a command speaking MCP over stdin/stdout.
type StdioConfig struct {
	Command string
	Args    []string
	Env     map[string]string // added to a minimal base environment
	Dir     string
}

// inheritedEnv are the variables passed from the gateway's environment to
// stdio upstreams. Everything else must be configured explicitly, so the
// gateway's own secrets never leak into upstream processes.
var inheritedEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR"}

// stdioWire runs the command and frames messages as newline-delimited JSON.
// It is written here rather than using the go-sdk's CommandTransport because
// the gateway needs the raw bytes of every message (no decode/re-encode), a
// bound on message size and control over process-group shutdown.
type stdioWire struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	wmu    sync.Mutex
	exited chan struct{}
	stderr *tailBuffer
}

// StartStdio starts the command and returns a client for it. The client's
// reader runs until the process's stdout closes.
func StartStdio(cfg StdioConfig, opts Options) (*Client, error) {
	command := cfg.Command
	if command == "gatehouse" {
		// The built-in servers run from this very binary, also under `go run`.
		if self, err := os.Executable(); err == nil {
			command = self
		}
	}
	cmd := exec.Command(command, cfg.Args...)
	cmd.Dir = cfg.Dir
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	for k, v := range cfg.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// A process group lets Close stop the children a launcher (npx, uv)
	// started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cfg.Command, err)
	}
	w := &stdioWire{cmd: cmd, stdin: stdin, exited: make(chan struct{}), stderr: &tailBuffer{max: 2048}}
	c := newClient(opts, w)
	go w.logStderr(c, stderr)
	go w.readLoop(c, stdout)
	return c, nil
}

func (w *stdioWire) readLoop(c *Client, stdout io.Reader) {
	r := bufio.NewReaderSize(stdout, 64<<10)
	var readErr error
	for {
		line, err := readLine(r, c.opts.MaxMessageBytes)
		if errors.Is(err, errTooLarge) {
			// line is the message's start: enough to fail the call it
			// answers now rather than at its timeout.
			c.log.Warn("dropped a message larger than the limit", "limit_bytes", c.opts.MaxMessageBytes)
			c.failTooLarge(line)
			continue
		}
		if len(line) > 0 {
			if line[0] == '{' || line[0] == '[' {
				c.deliver(line, nil)
			} else {
				c.log.Warn("upstream wrote non-JSON to stdout", "line", truncate(line, 200))
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
	}
	waitErr := w.cmd.Wait()
	close(w.exited)
	cause := fmt.Errorf("%w: %s exited", ErrClosed, c.opts.Name)
	switch {
	case readErr != nil:
		cause = fmt.Errorf("%w: %s: reading stdout: %v", ErrClosed, c.opts.Name, readErr)
		_ = w.kill()
	case waitErr != nil:
		cause = fmt.Errorf("%w: %s exited: %v", ErrClosed, c.opts.Name, waitErr)
	}
	if tail := w.stderr.String(); tail != "" {
		c.log.Debug("upstream stderr before exit", "tail", tail)
	}
	c.fail(cause)
}

var errTooLarge = errors.New("message too large")

// readLine reads one newline-terminated line without the line ending,
// refusing lines longer than max: the rest of the line is discarded and
// the line's start is returned with errTooLarge.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > max+1 {
			// Copy the start now: the next ReadSlice overwrites chunk.
			head := append(buf, chunk[:min(len(chunk), 4096)]...)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			if err == nil {
				return head, errTooLarge
			}
			return nil, err
		}
		buf = append(buf, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		buf = bytes.TrimRight(buf, "\r\n")
		return bytes.TrimSpace(buf), err
	}
}

func (w *stdioWire) logStderr(c *Client, stderr io.Reader) {
	s := bufio.NewScanner(stderr)
	s.Buffer(make([]byte, 0, 4096), 64<<10)
	for s.Scan() {
		line := s.Bytes()
		w.stderr.Write(line)
		c.log.Info("upstream stderr", "line", truncate(line, 2000))
	}
}

func (w *stdioWire) send(_ context.Context, msg []byte, _ *Call) error {
	// Raw CR/LF can only be insignificant whitespace in valid JSON, so they
	// are replaced to keep one message per line.
	if bytes.ContainsAny(msg, "\r\n") {
		msg = bytes.Map(func(r rune) rune {
			if r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, msg)
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	buf := make([]byte, 0, len(msg)+1)
	buf = append(append(buf, msg...), '\n')
	if _, err := w.stdin.Write(buf); err != nil {
		return fmt.Errorf("%w: writing to stdin: %v", ErrClosed, err)
	}
	return nil
}

// close asks the process to exit by closing stdin, then escalates to
// SIGTERM and SIGKILL for the whole process group.
func (w *stdioWire) close(ctx context.Context) error {
	_ = w.stdin.Close()
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{0, 2 * time.Second}, {syscall.SIGTERM, 2 * time.Second}, {syscall.SIGKILL, 5 * time.Second}} {
		if step.sig != 0 {
			_ = syscall.Kill(-w.cmd.Process.Pid, step.sig)
		}
		t := time.NewTimer(step.wait)
		select {
		case <-w.exited:
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			_ = w.kill()
			return ctx.Err()
		case <-t.C:
		}
	}
	return errors.New("process did not exit after SIGKILL")
}

func (w *stdioWire) kill() error {
	return syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
}

// Pid returns the process id of a stdio upstream (0 for other transports).
func (c *Client) Pid() int {
	if w, ok := c.w.(*stdioWire); ok && w.cmd.Process != nil {
		return w.cmd.Process.Pid
	}
	return 0
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// tailBuffer keeps the last max bytes written, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	t.buf = append(t.buf, '\n')
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
