package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"time"
)

// Audit configures the audit trail. It is on whenever the gateway has a
// store (identity on), unless disabled.
type Audit struct {
	// Disabled turns the audit trail off (not recommended).
	Disabled bool `yaml:"disabled"`
	// QueueDir holds the durable local queue (default: audit-queue beside
	// the SQLite file; gatehouse-data/audit-queue with PostgreSQL).
	QueueDir string `yaml:"queue_dir"`
	// Sync: "write" (default; a record survives the gateway being killed)
	// or "fsync" (it also survives the machine losing power, at the cost
	// of a disk flush per group of records).
	Sync string `yaml:"sync"`
	// MaxQueue bounds the records written and not yet in the store.
	MaxQueue ByteSize `yaml:"max_queue"`
	// FailMode when the queue is full: "reject" (default: new calls get an
	// error until records can be kept) or "drop" (count and drop records).
	FailMode string `yaml:"fail_mode"`
	// MaskFields are argument names masked in records besides the
	// built-in ones (password, token, api_key, authorization, …).
	MaskFields []string `yaml:"mask_fields"`
	// A checkpoint is signed after CheckpointEvery records or
	// CheckpointInterval, whichever comes first.
	CheckpointEvery    int      `yaml:"checkpoint_every"`
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	// Retention deletes records older than this (0: keep forever); a
	// signed checkpoint keeps what remains verifiable.
	Retention Duration `yaml:"retention"`
	// Sinks receive every record, each from its own cursor.
	Sinks []*AuditSink `yaml:"sinks"`
}

// AuditSink is one destination of records.
type AuditSink struct {
	Name string `yaml:"name"`
	// Type: file, webhook, splunk_hec, syslog, azure_logs, kafka, s3, otlp.
	Type string `yaml:"type"`
	// Settings are the sink type's own fields (docs/audit.md). String
	// values may use ${VAR}; they may hold secrets and are never logged.
	Settings map[string]any `yaml:"settings"`
}

// Audit defaults.
const (
	DefaultAuditMaxQueue           = 256 << 20
	DefaultAuditCheckpointEvery    = 1000
	DefaultAuditCheckpointInterval = 30 * time.Second
)

func applyAuditDefaults(c *Config) {
	a := &c.Audit
	if a.QueueDir == "" {
		// Beside the store's file, so that one directory holds the state.
		a.QueueDir = "gatehouse-data/audit-queue"
		if c.Store.Driver == "sqlite" && c.Store.Path != "" {
			a.QueueDir = filepath.Join(filepath.Dir(c.Store.Path), "audit-queue")
		}
	}
	if a.Sync == "" {
		a.Sync = "write"
	}
	if a.MaxQueue == 0 {
		a.MaxQueue = DefaultAuditMaxQueue
	}
	if a.FailMode == "" {
		a.FailMode = "reject"
	}
	if a.CheckpointEvery == 0 {
		a.CheckpointEvery = DefaultAuditCheckpointEvery
	}
	if a.CheckpointInterval == 0 {
		a.CheckpointInterval = Duration(DefaultAuditCheckpointInterval)
	}
}

var sinkTypes = map[string]bool{"file": true, "webhook": true, "splunk_hec": true, "syslog": true, "azure_logs": true, "kafka": true, "s3": true, "otlp": true}

var sinkNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func (l *loader) validateAudit(c *Config) {
	a := &c.Audit
	switch a.Sync {
	case "write", "fsync":
	default:
		l.addAt("audit.sync", "unknown value %q (write, fsync)", a.Sync)
	}
	switch a.FailMode {
	case "reject", "drop":
	default:
		l.addAt("audit.fail_mode", "unknown value %q (reject, drop)", a.FailMode)
	}
	if a.CheckpointEvery < 0 {
		l.addAt("audit.checkpoint_every", "must not be negative")
	}
	if a.Retention != 0 && a.Retention.Std() < time.Hour {
		l.addAt("audit.retention", "must be at least 1h (or 0 to keep records forever)")
	}
	seen := map[string]int{}
	for i, s := range a.Sinks {
		p := fmt.Sprintf("audit.sinks[%d]", i)
		if s == nil {
			l.addAt(p, "empty entry")
			continue
		}
		if !sinkNameRE.MatchString(s.Name) {
			l.addAt(p+".name", "sink name %q must be 1-64 characters of letters, digits, '_', '-' and '.'", s.Name)
		} else if j, dup := seen[s.Name]; dup {
			l.addAt(p+".name", "sink %q is also audit.sinks[%d]", s.Name, j)
		} else {
			seen[s.Name] = i
		}
		if !sinkTypes[s.Type] {
			l.addAt(p+".type", "unknown sink type %q (file, webhook, splunk_hec, syslog, azure_logs, kafka, s3, otlp)", s.Type)
		}
	}
}

// expandAudit expands ${VAR} in the queue directory and in the string
// values of sink settings.
func (l *loader) expandAudit(c *Config, lookup func(string) (string, bool)) {
	c.Audit.QueueDir = l.expand(c.Audit.QueueDir, "audit.queue_dir", lookup)
	for i, s := range c.Audit.Sinks {
		if s == nil {
			continue
		}
		p := fmt.Sprintf("audit.sinks[%d].settings", i)
		for k, v := range s.Settings {
			s.Settings[k] = l.expandAny(v, joinPath(p, k), lookup)
		}
	}
}

func (l *loader) expandAny(v any, path string, lookup func(string) (string, bool)) any {
	switch t := v.(type) {
	case string:
		return l.expand(t, path, lookup)
	case []any:
		for i := range t {
			t[i] = l.expandAny(t[i], fmt.Sprintf("%s[%d]", path, i), lookup)
		}
	case map[string]any:
		for k := range t {
			t[k] = l.expandAny(t[k], joinPath(path, k), lookup)
		}
	}
	return v
}
