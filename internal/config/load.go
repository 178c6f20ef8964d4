package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Problem is one configuration error with its location in the file.
type Problem struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int
	Path   string // e.g. servers.support.upstreams[0].upstream
	Msg    string
}

func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is the list of every error found in one file.
type Problems []Problem

func (ps Problems) Error() string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "\n")
}

// LoadFile reads, decodes, expands and validates a configuration file. On
// failure the error is a Problems listing every error with its position.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Load(path, data, os.LookupEnv)
}

// Load decodes and validates configuration data; name is used in messages
// and lookupEnv resolves ${VAR} references.
func Load(name string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	l := &loader{name: name}
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		l.yamlError(err)
		return nil, l.problems
	}
	var body ast.Node
	switch len(file.Docs) {
	case 0:
	case 1:
		body = file.Docs[0].Body
	default:
		l.add(file.Docs[1].Body, "", "the file must hold a single YAML document")
		return nil, l.problems
	}
	l.root = body
	cfg := &Config{}
	if body != nil {
		if _, ok := body.(*ast.MappingNode); !ok {
			if _, null := body.(*ast.NullNode); !null {
				l.add(body, "", "the top level must be a mapping")
				return nil, l.problems
			}
		} else {
			l.checkKeys(body, reflect.TypeOf(Config{}), "")
			if len(l.problems) > 0 {
				return nil, l.problems
			}
			if err := decodeNode(body, cfg); err != nil {
				l.yamlError(err)
				return nil, l.problems
			}
		}
	}
	cfg.loc = l
	l.expandEnv(cfg, lookupEnv)
	applyDefaults(cfg)
	l.validate(cfg)
	if len(l.problems) > 0 {
		return nil, l.problems
	}
	return cfg, nil
}

// ProblemAt returns a problem at path (see addAt for the path syntax),
// located in the file the configuration was loaded from. Packages that
// compile parts of a loaded configuration (policies) report with it.
func (c *Config) ProblemAt(path, format string, args ...any) Problem {
	if c.loc == nil {
		return Problem{File: "config", Path: path, Msg: fmt.Sprintf(format, args...)}
	}
	probe := &loader{name: c.loc.name, root: c.loc.root}
	probe.addAt(path, format, args...)
	return probe.problems[0]
}

// decodeNode decodes the document into cfg. The YAML library panics on
// some malformed documents (an empty tagged value where a list is due,
// found by FuzzLoad): a configuration file must get an error, not a crash.
func decodeNode(body ast.Node, cfg *Config) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the document could not be decoded (%v): check tags (!…), anchors (&…) and aliases (*…)", r)
		}
	}()
	return yaml.NodeToValue(body, cfg)
}

type loader struct {
	name     string
	root     ast.Node
	problems Problems
}

func (l *loader) yamlError(err error) {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		pos := ye.GetToken().Position
		l.problems = append(l.problems, Problem{File: l.name, Line: pos.Line, Column: pos.Column, Msg: ye.GetMessage()})
		return
	}
	l.problems = append(l.problems, Problem{File: l.name, Msg: err.Error()})
}

// add records a problem at node (may be nil).
func (l *loader) add(node ast.Node, path, format string, args ...any) {
	p := Problem{File: l.name, Path: path, Msg: fmt.Sprintf(format, args...)}
	if node != nil && node.GetToken() != nil {
		p.Line, p.Column = node.GetToken().Position.Line, node.GetToken().Position.Column
	}
	l.problems = append(l.problems, p)
}

// addAt records a problem at a path, resolving its position in the file.
// A path names mapping keys with dots and sequence items with [i]; map keys
// that contain dots are written in brackets: tools["a.b"].
func (l *loader) addAt(path, format string, args ...any) {
	l.add(l.lookup(path), path, format, args...)
}

// lookup finds the node for a path; for a missing node it returns the
// closest existing ancestor so the message still points near the problem.
func (l *loader) lookup(path string) ast.Node {
	node := l.root
	for _, seg := range splitPath(path) {
		next := child(node, seg)
		if next == nil {
			return node
		}
		node = next
	}
	return node
}

func splitPath(path string) []string {
	var segs []string
	for path != "" {
		switch {
		case path[0] == '.':
			path = path[1:]
		case path[0] == '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return append(segs, path)
			}
			seg := path[1:end]
			if uq, err := strconv.Unquote(seg); err == nil {
				seg = "\x00" + uq // quoted key, not an index
			}
			segs = append(segs, seg)
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			segs = append(segs, "\x00"+path[:end])
			path = path[end:]
		}
	}
	return segs
}

// child returns the value node for a key ("\x00key") or index ("3").
func child(node ast.Node, seg string) ast.Node {
	switch n := node.(type) {
	case *ast.MappingNode:
		if !strings.HasPrefix(seg, "\x00") {
			return nil
		}
		for _, kv := range n.Values {
			if kv.Key.String() == seg[1:] || unquoteKey(kv.Key) == seg[1:] {
				return kv.Value
			}
		}
	case *ast.SequenceNode:
		i, err := strconv.Atoi(seg)
		if err == nil && i >= 0 && i < len(n.Values) {
			return n.Values[i]
		}
	case *ast.TagNode:
		return child(n.Value, seg)
	case *ast.AnchorNode:
		return child(n.Value, seg)
	}
	return nil
}

func unquoteKey(k ast.MapKeyNode) string {
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value
	}
	return k.String()
}

// checkKeys reports every unknown key in the document, comparing mapping
// keys with the yaml tags of the Go type the mapping decodes into. Doing it
// here (instead of the decoder's strict mode) reports all of them at once.
func (l *loader) checkKeys(node ast.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n := node.(type) {
	case *ast.TagNode:
		l.checkKeys(n.Value, t, path)
		return
	case *ast.AnchorNode:
		l.checkKeys(n.Value, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := node.(*ast.MappingNode)
		if !ok {
			if _, null := node.(*ast.NullNode); !null && !isTextType(t) {
				l.add(node, path, "must be a mapping")
			}
			return
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			fields[tag] = f.Type
			names = append(names, tag)
		}
		for _, kv := range m.Values {
			key := unquoteKey(kv.Key)
			ft, ok := fields[key]
			if !ok {
				l.add(kv.Key, joinPath(path, key), "unknown field %q (known: %s)", key, strings.Join(names, ", "))
				continue
			}
			l.checkKeys(kv.Value, ft, joinPath(path, key))
		}
	case reflect.Map:
		m, ok := node.(*ast.MappingNode)
		if !ok {
			if _, null := node.(*ast.NullNode); !null {
				l.add(node, path, "must be a mapping")
			}
			return
		}
		for _, kv := range m.Values {
			key := unquoteKey(kv.Key)
			l.checkKeys(kv.Value, t.Elem(), joinPath(path, key))
		}
	case reflect.Slice:
		s, ok := node.(*ast.SequenceNode)
		if !ok {
			if _, null := node.(*ast.NullNode); !null {
				l.add(node, path, "must be a list")
			}
			return
		}
		for i, v := range s.Values {
			l.checkKeys(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

func isTextType(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(reflect.TypeFor[interface{ UnmarshalText([]byte) error }]())
}

func joinPath(path, key string) string {
	if strings.ContainsAny(key, ".[]\"") {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}
