package policy

import (
	"strings"
	"unicode"
)

// SQLReadOnly reports whether query is a single statement that only reads:
// it starts with SELECT, WITH, SHOW, EXPLAIN, DESCRIBE/DESC, VALUES or TABLE
// and contains no keyword that writes, changes schema or privileges, or
// runs code, outside string literals, quoted identifiers and comments.
// It errs on the side of refusing: anything it cannot read is not
// read-only (e.g. an unterminated literal, a second statement).
func SQLReadOnly(query string) bool {
	words, ok := sqlWords(query)
	if !ok || len(words) == 0 {
		return false
	}
	switch words[0] {
	case "SELECT", "WITH", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "VALUES", "TABLE":
	default:
		return false
	}
	for i, w := range words {
		if sqlWriteWords[w] {
			return false
		}
		// EXPLAIN ANALYZE runs the statement; SELECT ... INTO creates a table;
		// FOR UPDATE/SHARE takes locks.
		if w == "ANALYZE" && i > 0 && words[i-1] == "EXPLAIN" {
			return false
		}
		if (w == "INTO" || w == "FOR") && words[0] != "SHOW" {
			return false
		}
	}
	return true
}

var sqlWriteWords = map[string]bool{
	"INSERT": true, "UPDATE": true, "DELETE": true, "MERGE": true, "UPSERT": true, "REPLACE": true,
	"CREATE": true, "ALTER": true, "DROP": true, "TRUNCATE": true, "RENAME": true, "COMMENT": true,
	"GRANT": true, "REVOKE": true, "COPY": true, "CALL": true, "EXEC": true, "EXECUTE": true, "DO": true,
	"LOCK": true, "VACUUM": true, "REINDEX": true, "CLUSTER": true, "REFRESH": true, "ATTACH": true,
	"DETACH": true, "PRAGMA": true, "SET": true, "RESET": true, "LOAD": true, "IMPORT": true, "BEGIN": true,
	"COMMIT": true, "ROLLBACK": true, "SAVEPOINT": true, "PREPARE": true, "DEALLOCATE": true, "LISTEN": true,
	"NOTIFY": true, "UNLISTEN": true, "DISCARD": true, "SECURITY": true, "OUTFILE": true, "DUMPFILE": true,
	"HANDLER": true, "SHUTDOWN": true, "KILL": true, "INSTALL": true, "UNINSTALL": true,
	// Functions that write or reach outside the database.
	"PG_SLEEP": true, "PG_READ_FILE": true, "PG_READ_BINARY_FILE": true, "PG_LS_DIR": true, "LO_IMPORT": true,
	"LO_EXPORT": true, "DBLINK": true, "DBLINK_EXEC": true, "NEXTVAL": true, "SETVAL": true, "SET_CONFIG": true,
	"LOAD_FILE": true, "SLEEP": true, "BENCHMARK": true, "XP_CMDSHELL": true, "OPENROWSET": true,
	"OPENDATASOURCE": true, "PG_TERMINATE_BACKEND": true, "PG_CANCEL_BACKEND": true,
}

// sqlWords returns the upper-cased bare words of one statement, skipping
// literals, quoted identifiers and comments. It fails on a second
// statement, unterminated quotes or comments, and dollar quoting.
func sqlWords(q string) ([]string, bool) {
	var words []string
	ended := false // a ';' was seen: only whitespace and comments may follow
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '#':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return nil, false
			}
			i += end + 4
		case ended:
			return nil, false
		case c == ';':
			ended = true
			i++
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for {
				if j >= len(q) {
					return nil, false
				}
				if q[j] == '\\' && c == '\'' {
					j += 2
					continue
				}
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = j + 1
		case c == '$':
			// Dollar quoting ($tag$…$tag$) hides arbitrary text; parameters
			// ($1) are fine.
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			if j == i+1 {
				return nil, false
			}
			i = j
		case c == '_' || unicode.IsLetter(rune(c)):
			j := i
			for j < len(q) && (q[j] == '_' || q[j] == '$' || unicode.IsLetter(rune(q[j])) || unicode.IsDigit(rune(q[j]))) {
				j++
			}
			words = append(words, strings.ToUpper(q[i:j]))
			i = j
		default:
			i++
		}
	}
	return words, true
}
