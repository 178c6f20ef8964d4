package sinks

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"gatehouse/internal/audit"
)

// Defaults of the file sink.
const (
	DefaultFileMaxBytes = 100 << 20 // 100 MiB
	DefaultFileMaxFiles = 10
)

// FileConfig configures the file sink.
type FileConfig struct {
	// Name identifies the sink (default "file").
	Name string
	// Path is the file records are appended to, one JSON object a line.
	// Its directory is created (mode 0700) when missing.
	Path string
	// MaxBytes rotates the file before a line would take it past this
	// size (default 100 MiB). A line longer than MaxBytes gets a file of
	// its own.
	MaxBytes int64
	// MaxFiles is how many rotated files are kept: Path.1 (the newest) to
	// Path.N; older ones are deleted (default 10).
	MaxFiles int
}

// File appends records as JSON lines (each the record's canonical JSON,
// as encoding/json writes audit.Record) to a file of mode 0600, rotated by
// size, and fsyncs after each batch. A batch that fails part way is cut
// off the file again (best effort) so no partial line stays, then resent.
// One process should write a given path.
type File struct {
	name     string
	path     string
	maxBytes int64
	maxFiles int

	mu     sync.Mutex
	f      *os.File
	size   int64
	closed bool
}

var _ audit.Sink = (*File)(nil)

// NewFile validates cfg and opens (or creates) the file.
func NewFile(cfg FileConfig) (*File, error) {
	if cfg.Name == "" {
		cfg.Name = "file"
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("audit sink %q (file): "+format, append([]any{cfg.Name}, a...)...)
	}
	if cfg.Path == "" {
		return nil, errf("path is required")
	}
	if cfg.MaxBytes < 0 {
		return nil, errf("max_bytes must not be negative")
	}
	if cfg.MaxFiles < 0 {
		return nil, errf("max_files must not be negative")
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultFileMaxBytes
	}
	if cfg.MaxFiles == 0 {
		cfg.MaxFiles = DefaultFileMaxFiles
	}
	s := &File{name: cfg.Name, path: filepath.Clean(cfg.Path), maxBytes: cfg.MaxBytes, maxFiles: cfg.MaxFiles}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return nil, errf("%w", err)
	}
	if err := s.open(); err != nil {
		return nil, errf("%w", err)
	}
	return s, nil
}

// Name implements audit.Sink.
func (s *File) Name() string { return s.name }

// open opens the file for appending, making its mode 0600.
func (s *File) open() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil && st.Mode().Perm() != 0o600 {
		err = f.Chmod(0o600)
	}
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.size = f, st.Size()
	return nil
}

// Send appends the batch and fsyncs.
func (s *File) Send(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("file sink %q: closed", s.name)
	}
	if err := s.send(recs); err != nil {
		return fmt.Errorf("file sink %q: %w", s.name, err)
	}
	return nil
}

func (s *File) send(recs []audit.Record) (err error) {
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	start := s.size // what to cut the file back to on failure
	w := bufio.NewWriterSize(s.f, 64<<10)
	defer func() {
		if err == nil {
			return
		}
		// Drop what this batch wrote to the current file (the batch
		// comes again) and reopen next time.
		if s.f != nil {
			_ = s.f.Truncate(start)
			_ = s.f.Close()
			s.f = nil
		}
	}()
	for i := range recs {
		line, err := json.Marshal(&recs[i])
		if err != nil {
			return fmt.Errorf("encoding record %s: %w", recs[i].ID, err)
		}
		line = append(line, '\n')
		if s.size > 0 && s.size+int64(len(line)) > s.maxBytes {
			if err := w.Flush(); err != nil {
				return err
			}
			if err := s.rotate(); err != nil {
				return err
			}
			start = 0
			w.Reset(s.f)
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		s.size += int64(len(line))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return s.f.Sync()
}

// rotate syncs and closes the current file, shifts Path.i to Path.i+1
// (dropping Path.MaxFiles), renames Path to Path.1 and opens a new Path.
func (s *File) rotate() error {
	if err := s.f.Sync(); err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		s.f = nil
		return err
	}
	s.f = nil
	old := func(i int) string { return s.path + "." + strconv.Itoa(i) }
	if err := os.Remove(old(s.maxFiles)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for i := s.maxFiles - 1; i >= 1; i-- {
		if err := os.Rename(old(i), old(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(s.path, old(1)); err != nil {
		return err
	}
	if err := s.open(); err != nil {
		return err
	}
	// Make the renames durable with the new file.
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Close closes the file.
func (s *File) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
