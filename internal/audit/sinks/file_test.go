package sinks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/internal/audit"
	"gatehouse/internal/audit/sinks"
)

// stLines reads a JSON-lines file.
func stLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline", path)
	}
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func stCanonical(t *testing.T, r audit.Record) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFileAppendsCanonicalLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "audit.jsonl") // directory created
	s, err := sinks.NewFile(sinks.FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Name() != "file" {
		t.Errorf("Name = %q", s.Name())
	}
	recs := stRecords(5)
	ctx := context.Background()
	if err := s.Send(ctx, recs[:2]); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, nil); err != nil { // no-op
		t.Fatal(err)
	}
	if err := s.Send(ctx, recs[2:]); err != nil {
		t.Fatal(err)
	}
	lines := stLines(t, path)
	if len(lines) != len(recs) {
		t.Fatalf("%d lines, want %d", len(lines), len(recs))
	}
	for i, r := range recs {
		if !bytes.Equal(lines[i], stCanonical(t, r)) {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], stCanonical(t, r))
		}
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if st.IsDir() {
			want = 0o700
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %o, want %o", p, st.Mode().Perm(), want)
		}
	}

	// Reopening appends.
	s.Close()
	if err := s.Send(ctx, recs[:1]); err == nil {
		t.Error("Send after Close succeeded")
	}
	s2, err := sinks.NewFile(sinks.FileConfig{Name: "again", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Send(ctx, recs[:1]); err != nil {
		t.Fatal(err)
	}
	if n := len(stLines(t, path)); n != len(recs)+1 {
		t.Errorf("%d lines after reopening, want %d", n, len(recs)+1)
	}
}

func TestFileEmptyBatchIsNoOp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := sinks.NewFile(sinks.FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Send(context.Background(), []audit.Record{}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 0 {
		t.Errorf("after an empty batch: %v, %v", st, err)
	}
}

func TestFileRotation(t *testing.T) {
	recs := stRecords(40)
	for i := range recs { // make every line the same length
		recs[i].Seq = int64(100 + i)
		recs[i].Target.Tool = fmt.Sprintf("create_issue_%02d", i)
		recs[i].Outcome.Status = audit.OutcomeDenied
	}
	lineLen := len(stCanonical(t, recs[0])) + 1
	for _, r := range recs {
		if len(stCanonical(t, r))+1 != lineLen {
			t.Fatal("fixture lines differ in length")
		}
	}
	tests := []struct {
		name      string
		perFile   int // lines that fit in max_bytes
		maxFiles  int
		batchSize int
	}{
		{"one line a file", 1, 3, 7},
		{"three lines a file, batches straddle", 3, 2, 4},
		{"whole batch in one send", 5, 4, 40},
		{"line larger than max_bytes", 0, 2, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			maxBytes := int64(tt.perFile * lineLen)
			if tt.perFile == 0 {
				maxBytes = int64(lineLen / 2)
			}
			s, err := sinks.NewFile(sinks.FileConfig{Path: path, MaxBytes: maxBytes, MaxFiles: tt.maxFiles})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i := 0; i < len(recs); i += tt.batchSize {
				if err := s.Send(context.Background(), recs[i:min(i+tt.batchSize, len(recs))]); err != nil {
					t.Fatal(err)
				}
			}
			perFile := max(tt.perFile, 1)
			// Oldest first: path.N … path.1, path.
			var files []string
			for i := tt.maxFiles; i >= 1; i-- {
				files = append(files, path+"."+string(rune('0'+i)))
			}
			files = append(files, path)
			var got [][]byte
			for _, f := range files {
				st, err := os.Stat(f)
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("%s mode %o, want 600", f, st.Mode().Perm())
				}
				if st.Size() > max(maxBytes, int64(lineLen)) {
					t.Errorf("%s is %d bytes, above max_bytes %d", f, st.Size(), maxBytes)
				}
				got = append(got, stLines(t, f)...)
			}
			if _, err := os.Stat(path + "." + string(rune('0'+tt.maxFiles+1))); !os.IsNotExist(err) {
				t.Errorf("more than max_files rotated files kept: %v", err)
			}
			// The kept lines are the last ones, in order.
			kept := perFile * tt.maxFiles
			last := len(recs) % perFile
			if last == 0 {
				last = perFile
			}
			kept += last
			if len(got) != kept {
				t.Fatalf("%d lines kept, want %d", len(got), kept)
			}
			for i, line := range got {
				want := stCanonical(t, recs[len(recs)-kept+i])
				if !bytes.Equal(line, want) {
					t.Fatalf("kept line %d is %.40s…, want %.40s…", i, line, want)
				}
			}
		})
	}
}

func TestFileTightensMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := sinks.NewFile(sinks.FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", st.Mode().Perm())
	}
}

func TestFileConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "plain")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  sinks.FileConfig
		want string
	}{
		{"no path", sinks.FileConfig{}, "path is required"},
		{"negative max_bytes", sinks.FileConfig{Path: filepath.Join(dir, "a"), MaxBytes: -1}, "max_bytes"},
		{"negative max_files", sinks.FileConfig{Path: filepath.Join(dir, "a"), MaxFiles: -1}, "max_files"},
		{"directory is a file", sinks.FileConfig{Name: "f1", Path: filepath.Join(notDir, "audit.jsonl")}, `audit sink "f1" (file)`},
		{"path is a directory", sinks.FileConfig{Path: dir}, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sinks.NewFile(tt.cfg)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
