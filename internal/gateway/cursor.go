package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
)

// A gateway cursor tells, for a list fanned out to several upstreams, which
// upstreams still have pages and their own cursors. It is opaque to clients.
// Upstream cursors are passed back verbatim; the gateway never interprets
// them.
type fanCursor struct {
	V int               `json:"v"`
	C map[string]string `json:"c"` // member index -> upstream cursor
}

var errBadCursor = errors.New("invalid cursor")

func encodeCursor(next map[int]string) string {
	if len(next) == 0 {
		return ""
	}
	c := fanCursor{V: 1, C: make(map[string]string, len(next))}
	for i, cur := range next {
		c.C[strconv.Itoa(i)] = cur
	}
	b, _ := json.Marshal(c)
	return "gh1." + base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, members int) (map[int]string, error) {
	if len(s) < 4 || s[:4] != "gh1." {
		return nil, errBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s[4:])
	if err != nil {
		return nil, errBadCursor
	}
	var c fanCursor
	if err := json.Unmarshal(b, &c); err != nil || c.V != 1 || len(c.C) == 0 {
		return nil, errBadCursor
	}
	out := make(map[int]string, len(c.C))
	for k, v := range c.C {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= members {
			return nil, errBadCursor
		}
		out[i] = v
	}
	return out, nil
}
