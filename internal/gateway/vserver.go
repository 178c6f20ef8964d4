package gateway

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"gatehouse/internal/config"
	"gatehouse/internal/policy"
)

// VirtualServer is one compiled entry of the servers section: its members
// in priority order and their name mappings. It is immutable.
type VirtualServer struct {
	Name    string
	members []*member
	// transparent: one member, no prefix, no filters, no overrides. Such a
	// server forwards lists and results byte for byte.
	transparent  bool
	instructions *string
	signature    string
	// policy decides what callers see and call (nil: no policy section).
	policy *policy.Policy
}

// member is one upstream's membership in a virtual server.
type member struct {
	e       *entry
	index   int
	prefix  string
	include []string
	exclude []string
	// Tool overrides, by upstream name and by virtual name.
	renameTo    map[string]string
	renameFrom  map[string]string
	description map[string]string
}

func newVirtualServer(name string, s *config.Server, entries map[string]*entry) *VirtualServer {
	vs := &VirtualServer{Name: name, instructions: s.Instructions}
	var sig strings.Builder
	for i, su := range s.Upstreams {
		m := &member{
			e: entries[su.Upstream], index: i, prefix: su.EffectivePrefix(),
			include: su.Include, exclude: su.Exclude,
			renameTo: map[string]string{}, renameFrom: map[string]string{}, description: map[string]string{},
		}
		keys := make([]string, 0, len(su.Tools))
		for k := range su.Tools {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, up := range keys {
			o := su.Tools[up]
			if o.Name != "" {
				m.renameTo[up] = o.Name
				m.renameFrom[o.Name] = up
			}
			if o.Description != nil {
				m.description[up] = *o.Description
			}
			// The description's value is part of the signature: clients
			// must hear (list_changed) when a reload changes it.
			desc := "-"
			if o.Description != nil {
				desc = strconv.Quote(*o.Description)
			}
			fmt.Fprintf(&sig, "%q=%q/%s;", up, o.Name, desc)
		}
		fmt.Fprintf(&sig, "|%s|%s|%q|%q|%s", su.Upstream, m.e.fp, m.prefix, su.Include, su.Exclude)
		vs.members = append(vs.members, m)
	}
	if s.Instructions != nil {
		sig.WriteString(*s.Instructions)
	}
	vs.signature = sig.String()
	vs.transparent = len(vs.members) == 1 && vs.members[0].prefix == "" &&
		len(s.Upstreams[0].Include) == 0 && len(s.Upstreams[0].Exclude) == 0 && len(s.Upstreams[0].Tools) == 0
	return vs
}

// exposes applies the include and exclude globs to an upstream name.
func (m *member) exposes(up string) bool {
	for _, g := range m.exclude {
		if ok, _ := path.Match(g, up); ok {
			return false
		}
	}
	if len(m.include) == 0 {
		return true
	}
	for _, g := range m.include {
		if ok, _ := path.Match(g, up); ok {
			return true
		}
	}
	return false
}

// virtualName maps an upstream tool (or prompt, with tool=false) name to the
// name clients see, or reports that it is hidden.
func (m *member) virtualName(up string, tool bool) (string, bool) {
	if !m.exposes(up) {
		return "", false
	}
	if tool {
		if v, ok := m.renameTo[up]; ok {
			return v, true
		}
	}
	return m.prefix + up, true
}

// upstreamName maps a client-visible name back to the upstream's name.
// definite reports that the name can only belong to this member (a rename
// or a non-empty prefix); with an empty prefix any member could own it.
func (m *member) upstreamName(v string, tool bool) (up string, definite, ok bool) {
	if tool {
		if up, ok := m.renameFrom[v]; ok {
			return up, true, m.exposes(up)
		}
	}
	if !strings.HasPrefix(v, m.prefix) {
		return "", false, false
	}
	up = v[len(m.prefix):]
	if up == "" {
		return "", false, false
	}
	if tool {
		if _, renamed := m.renameTo[up]; renamed {
			return "", false, false // only reachable under its new name
		}
	}
	return up, m.prefix != "", m.exposes(up)
}
