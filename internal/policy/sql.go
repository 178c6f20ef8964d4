package policy

import (
	"strings"
	"unicode"
)

// SQLReadOnly reports whether query is a single statement that only reads:
// it starts with SELECT, WITH, SHOW, EXPLAIN, DESCRIBE/DESC, VALUES or TABLE
// and contains no keyword or function that writes, changes schema or
// privileges, locks, or runs code, outside string literals and comments
// (quoted identifiers count: "pg_sleep"(1) is a call). It errs on the side
// of refusing: whatever dialects read differently is refused — '#' (a
// comment in MySQL, an operator in PostgreSQL), backslashes inside quotes,
// "--" not followed by a space, nested and MySQL executable (/*! */)
// comments, dollar quoting — as are unterminated literals and a second
// statement. It is a guard for an agent's query, not a substitute for a
// read-only database role: use both.
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
	explain := false
	for _, w := range words {
		if sqlWriteWords[w] {
			return false
		}
		explain = explain || w == "EXPLAIN"
		// EXPLAIN ANALYZE runs the statement; SELECT ... INTO creates a table;
		// FOR UPDATE/SHARE takes locks.
		if (w == "ANALYZE" || w == "ANALYSE") && explain {
			return false
		}
		if w == "INTO" || w == "FOR" {
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
	"PG_ADVISORY_LOCK": true, "PG_ADVISORY_LOCK_SHARED": true, "PG_ADVISORY_XACT_LOCK": true,
	"PG_ADVISORY_XACT_LOCK_SHARED": true, "PG_TRY_ADVISORY_LOCK": true, "PG_TRY_ADVISORY_LOCK_SHARED": true,
	"PG_TRY_ADVISORY_XACT_LOCK": true, "PG_TRY_ADVISORY_XACT_LOCK_SHARED": true, "PG_NOTIFY": true,
	"LO_UNLINK": true, "LO_CREATE": true, "LO_CREAT": true, "LO_PUT": true, "LO_FROM_BYTEA": true,
	"PG_RELOAD_CONF": true, "PG_ROTATE_LOGFILE": true, "PG_PROMOTE": true, "PG_SWITCH_WAL": true,
	"PG_CREATE_RESTORE_POINT": true, "PG_FILE_WRITE": true, "PG_LOGICAL_EMIT_MESSAGE": true,
	"PG_STAT_RESET": true, "GET_LOCK": true, "RELEASE_LOCK": true, "RELEASE_ALL_LOCKS": true,
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
		case isSQLSpace(c):
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			// MySQL needs whitespace after "--" for a comment; PostgreSQL
			// does not: refuse what they would read differently.
			if i+2 < len(q) && !isSQLSpace(q[i+2]) {
				return nil, false
			}
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '#':
			return nil, false // a comment in MySQL, an operator in PostgreSQL
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return nil, false
			}
			body := q[i+2 : i+2+end]
			// MySQL runs /*! … */; PostgreSQL nests /* /* */ */.
			if strings.HasPrefix(body, "!") || strings.Contains(body, "/*") {
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
				if q[j] == '\\' {
					// An escape in MySQL, a character in PostgreSQL: the two
					// would end the literal in different places.
					return nil, false
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
			if c != '\'' {
				// A quoted identifier still names things: "pg_sleep"(1).
				words = append(words, strings.ToUpper(strings.ReplaceAll(q[i+1:j], string(c)+string(c), string(c))))
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

// isSQLSpace: the white space every dialect agrees on (\v is not
// white space to all of them, so it is refused like any other character).
func isSQLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}
