package sinks

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"

	"gatehouse/internal/audit"
)

// Build makes the sink a configuration entry describes: typ is the sink
// type (file, webhook, splunk_hec, syslog, azure_logs, kafka, s3, otlp)
// and settings its fields, in snake_case (max_bytes, client_secret, …),
// as docs/audit.md lists them.
func Build(name, typ string, settings map[string]any) (audit.Sink, error) {
	switch typ {
	case "file":
		var c FileConfig
		return build(name, settings, &c, func() (audit.Sink, error) { return NewFile(c) })
	case "webhook":
		var c WebhookConfig
		return build(name, settings, &c, func() (audit.Sink, error) { return NewWebhook(c) })
	case "splunk_hec":
		var c SplunkConfig
		return build(name, settings, &c, func() (audit.Sink, error) { return NewSplunk(c) })
	case "syslog":
		var c SyslogConfig
		return build(name, settings, &c, func() (audit.Sink, error) { return NewSyslog(c) })
	case "azure_logs":
		var c AzureConfig
		return build(name, settings, &c, func() (audit.Sink, error) { return NewAzure(c) })
	case "kafka":
		var c KafkaConfig
		return build(name, settings, &c, func() (audit.Sink, error) { return NewKafka(c) })
	case "s3":
		var c S3Config
		return build(name, settings, &c, func() (audit.Sink, error) { return NewS3(c) })
	case "otlp":
		var c OTLPConfig
		return build(name, settings, &c, func() (audit.Sink, error) { return NewOTLP(c) })
	}
	return nil, fmt.Errorf("unknown sink type %q", typ)
}

// Check decodes settings for a sink type without building the sink (no
// connection is opened), so that configuration load reports typos.
func Check(typ string, settings map[string]any) error {
	var cfg any
	switch typ {
	case "file":
		cfg = &FileConfig{}
	case "webhook":
		cfg = &WebhookConfig{}
	case "splunk_hec":
		cfg = &SplunkConfig{}
	case "syslog":
		cfg = &SyslogConfig{}
	case "azure_logs":
		cfg = &AzureConfig{}
	case "kafka":
		cfg = &KafkaConfig{}
	case "s3":
		cfg = &S3Config{}
	case "otlp":
		cfg = &OTLPConfig{}
	default:
		return fmt.Errorf("unknown sink type %q", typ)
	}
	return decode(settings, reflect.ValueOf(cfg).Elem(), "")
}

func build(name string, settings map[string]any, cfg any, mk func() (audit.Sink, error)) (audit.Sink, error) {
	if err := decode(settings, reflect.ValueOf(cfg).Elem(), ""); err != nil {
		return nil, err
	}
	if f := reflect.ValueOf(cfg).Elem().FieldByName("Name"); f.IsValid() {
		f.SetString(name)
	}
	return mk()
}

// decode sets the fields of struct v from settings. Keys match field
// names ignoring case and underscores (client_secret → ClientSecret);
// unknown keys are errors. Values are never quoted in errors: settings
// hold secrets.
func decode(settings map[string]any, v reflect.Value, path string) error {
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		// Only plain values and this package's option structs (TLS) are
		// settings; loggers and hooks are not.
		if !f.IsExported() || f.Name == "Name" || f.Type.Kind() == reflect.Func || f.Type.Kind() == reflect.Interface ||
			(f.Type.Kind() == reflect.Pointer && (f.Type.Elem().Kind() != reflect.Struct || f.Type.Elem().PkgPath() != t.PkgPath())) {
			continue
		}
		fields[strings.ToLower(f.Name)] = i
		names = append(names, snake(f.Name))
	}
	sort.Strings(names)
	for k, val := range settings {
		i, ok := fields[strings.ToLower(strings.ReplaceAll(k, "_", ""))]
		if !ok {
			return fmt.Errorf("settings%s: unknown field %q (known: %s)", path, k, strings.Join(names, ", "))
		}
		if err := set(v.Field(i), val, path+"."+k); err != nil {
			return err
		}
	}
	return nil
}

func set(f reflect.Value, val any, path string) error {
	bad := func(want string) error { return fmt.Errorf("settings%s: want %s", path, want) }
	if f.Type() == reflect.TypeOf(time.Duration(0)) {
		s, ok := val.(string)
		if !ok {
			return bad("a duration such as 30s")
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return bad("a duration such as 30s")
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		s, ok := val.(string)
		if !ok {
			return bad("a string")
		}
		f.SetString(s)
	case reflect.Bool:
		b, ok := val.(bool)
		if !ok {
			return bad("true or false")
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		var n int64
		switch x := val.(type) {
		case int:
			n = int64(x)
		case int64:
			n = x
		case uint64:
			if x > math.MaxInt64 {
				return bad("a whole number in range")
			}
			n = int64(x)
		case float64: // a whole number only: 1.5 bytes is a typo, not 1
			if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
				return bad("a whole number in range")
			}
			n = int64(x)
		default:
			return bad("a number")
		}
		if f.OverflowInt(n) {
			return bad("a whole number in range")
		}
		f.SetInt(n)
	case reflect.Slice:
		list, ok := val.([]any)
		if !ok || f.Type().Elem().Kind() != reflect.String {
			return bad("a list of strings")
		}
		out := reflect.MakeSlice(f.Type(), len(list), len(list))
		for i, x := range list {
			s, ok := x.(string)
			if !ok {
				return bad("a list of strings")
			}
			out.Index(i).SetString(s)
		}
		f.Set(out)
	case reflect.Map:
		m, ok := val.(map[string]any)
		if !ok || f.Type().Elem().Kind() != reflect.String {
			return bad("a mapping of strings")
		}
		out := reflect.MakeMap(f.Type())
		for k, x := range m {
			s, ok := x.(string)
			if !ok {
				return bad("a mapping of strings")
			}
			out.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(s).Convert(f.Type().Elem()))
		}
		f.Set(out)
	case reflect.Pointer:
		m, ok := val.(map[string]any)
		if !ok {
			return bad("a mapping")
		}
		p := reflect.New(f.Type().Elem())
		if err := decode(m, p.Elem(), path); err != nil {
			return err
		}
		f.Set(p)
	case reflect.Struct:
		m, ok := val.(map[string]any)
		if !ok {
			return bad("a mapping")
		}
		return decode(m, f, path)
	default:
		return bad("a supported value")
	}
	return nil
}

// snake turns a Go field name into its settings key (MaxBytes →
// max_bytes, DCRImmutableID → dcr_immutable_id).
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		upper := r >= 'A' && r <= 'Z'
		if upper && i > 0 {
			prevLower := s[i-1] >= 'a' && s[i-1] <= 'z'
			nextLower := i+1 < len(s) && s[i+1] >= 'a' && s[i+1] <= 'z'
			if prevLower || (nextLower && s[i-1] >= 'A' && s[i-1] <= 'Z') {
				b.WriteByte('_')
			}
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}
