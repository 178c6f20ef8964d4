package migrate

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []int
		wantErr string
	}{
		{
			name: "ordered",
			files: fstest.MapFS{
				"m/0002_more.sql": {Data: []byte("B")},
				"m/0001_init.sql": {Data: []byte("A")},
				"m/README":        {Data: []byte("ignored")},
			},
			want: []int{1, 2},
		},
		{name: "empty", files: fstest.MapFS{"m/x.txt": {}}, want: nil},
		{name: "gap", files: fstest.MapFS{"m/0001_a.sql": {}, "m/0003_c.sql": {}}, wantErr: "without gaps"},
		{name: "duplicate", files: fstest.MapFS{"m/0001_a.sql": {}, "m/1_b.sql": {}}, wantErr: "without gaps"},
		{name: "bad name", files: fstest.MapFS{"m/init.sql": {}}, wantErr: "want a name like"},
		{name: "no name", files: fstest.MapFS{"m/0001.sql": {}}, wantErr: "want a name like"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := Load(tt.files, "m")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load: err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.Version)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("versions = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("versions = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestPending(t *testing.T) {
	all := []Migration{{Version: 1, Name: "a"}, {Version: 2, Name: "b"}, {Version: 3, Name: "c"}}
	p, err := Pending(all, []int{1, 3})
	if err != nil || len(p) != 1 || p[0].Version != 2 {
		t.Fatalf("Pending = %v, %v; want [2]", p, err)
	}
	p, err = Pending(all, nil)
	if err != nil || len(p) != 3 {
		t.Fatalf("Pending(nothing applied) = %v, %v; want all three", p, err)
	}
	if _, err := Pending(all, []int{1, 2, 3, 4}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Pending with an unknown version: err = %v, want 'newer'", err)
	}
}
