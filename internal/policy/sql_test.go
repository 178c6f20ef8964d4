package policy

import (
	"slices"
	"strings"
	"testing"
)

func TestSQLReadOnly(t *testing.T) {
	cases := []struct {
		q    string
		want bool
	}{
		// Statements that read.
		{"SELECT 1", true},
		{"select * from customers where id = 3", true},
		{"SeLeCt 1", true},
		{"  \n\tSELECT 1  \r\n", true},
		{"(SELECT 1)", true},
		{"SELECT 1 UNION SELECT 2", true},
		{"WITH t AS (SELECT 1) SELECT * FROM t", true},
		{"EXPLAIN SELECT * FROM t", true},
		{"SHOW TABLES", true},
		{"SHOW GRANTS FOR alice", false}, // FOR (… FOR UPDATE) is refused everywhere
		{"DESCRIBE customers", true},
		{"DESC customers", true},
		{"VALUES (1), (2)", true},
		{"TABLE customers", true},
		// A trailing semicolon, and comments after it.
		{"SELECT 1;", true},
		{"SELECT 1 ;  ", true},
		{"SELECT 1; -- done", true},
		{"SELECT 1; /* trailing */ ", true},
		{"SELECT 1; # done", false}, // '#': a comment in MySQL, XOR in PostgreSQL
		// Keywords inside literals, quoted identifiers and comments.
		{"SELECT 'DELETE FROM x' AS s", true},
		{"SELECT 'a; DROP TABLE x' AS s", true},
		{"SELECT 'it''s DELETE' AS s", true},
		{`SELECT 'it\'s DROP' AS s`, false}, // backslashes: dialects end the literal differently
		{`SELECT 'back\\slash' FROM t`, false},
		{`SELECT "delete" FROM t`, false}, // quoted identifiers are names: "pg_sleep"(1)
		{`SELECT "a""DROP" FROM t`, true},
		{"SELECT `update` FROM t", false},
		{"SELECT `a``DROP` FROM t", true},
		{"SELECT 1 -- DROP TABLE x", true},
		{"SELECT 1 -- x\n FROM t", true},
		{"SELECT 1 /* DELETE */", true},
		{"SELECT 1 /* a */ /* ; DROP */ FROM t", true},
		{"SELECT 1 # DROP TABLE x", false},
		{"SELECT 'multi\nline DELETE'", true},
		// Words that only contain a keyword.
		{"SELECT * FROM updates", true},
		{"SELECT created_at, deleted, inserted_by, drop_count FROM t", true},
		{"SELECT _set FROM t", true},
		{"SELECT a$set FROM t", true},
		{"SELECT * FROM t WHERE id = $1 AND x = $22", true},
		{"SELECT 'é', naïve FROM t", true},
		{"SELECT 1e5, 0x1F FROM t", true},

		// Empty and not a statement that reads.
		{"", false},
		{"   ", false},
		{";", false},
		{"-- only a comment", false},
		{"/* only */", false},
		{"SELECTX 1", false},
		{"FOR x", false},
		{"/* x */ DELETE FROM t", false},
		{"-- SELECT\nDELETE FROM t", false},
		// Writes, schema, privileges, code.
		{"INSERT INTO t VALUES (1)", false},
		{"insert into t values (1)", false},
		{"UPDATE t SET a = 1", false},
		{"DELETE FROM t", false},
		{"DROP TABLE t", false},
		{"TRUNCATE t", false},
		{"ALTER TABLE t ADD c int", false},
		{"CREATE TABLE t (a int)", false},
		{"GRANT ALL ON t TO bob", false},
		{"REVOKE ALL ON t FROM bob", false},
		{"MERGE INTO t USING s ON (t.id = s.id) WHEN MATCHED THEN UPDATE SET a = 1", false},
		{"REPLACE INTO t VALUES (1)", false},
		{"CALL proc()", false},
		{"COPY t TO '/tmp/x'", false},
		{"DO $$ BEGIN END $$", false},
		{"EXEC sp_x", false},
		{"LOCK TABLE t", false},
		{"SET search_path = x", false},
		{"BEGIN", false},
		{"COMMIT", false},
		{"VACUUM", false},
		{"PRAGMA writable_schema = 1", false},
		{"ATTACH DATABASE 'x' AS y", false},
		// Writes hidden in a reading statement.
		{"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", false},
		{"WITH d AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM d", false},
		{"SELECT * FROM t WHERE id IN (SELECT id FROM u) OR 1 = (SELECT 1 FROM v FOR UPDATE)", false},
		{"EXPLAIN DELETE FROM t", false},
		{"EXPLAIN ANALYZE SELECT 1", false},
		{"explain analyze select 1", false},
		{"SELECT * FROM t FOR UPDATE", false},
		{"SELECT * FROM t FOR SHARE", false},
		{"SELECT * INTO new_t FROM t", false},
		{"SELECT 1 INTO OUTFILE '/tmp/x'", false},
		{"SELECT 1 INTO DUMPFILE '/tmp/x'", false},
		{"SELECT * FROM t LOCK IN SHARE MODE", false},
		// Functions with effects.
		{"SELECT pg_sleep(10)", false},
		{"SELECT PG_SLEEP(1)", false},
		{"SELECT pg_catalog.pg_sleep(1)", false},
		{"SELECT nextval('s')", false},
		{"SELECT setval('s', 1)", false},
		{"SELECT set_config('a', 'b', false)", false},
		{"SELECT pg_read_file('/etc/passwd')", false},
		{"SELECT lo_import('/etc/passwd')", false},
		{"SELECT dblink_exec('dbname=x', 'DELETE FROM t')", false},
		{"SELECT pg_terminate_backend(1)", false},
		{"SELECT sleep(5)", false},
		{"SELECT benchmark(1000000, md5('x'))", false},
		{"SELECT load_file('/etc/passwd')", false},
		{"SELECT xp_cmdshell('dir')", false},
		// Two statements.
		{"SELECT 1; DROP TABLE x", false},
		{"SELECT 1; SELECT 2", false},
		{"SELECT 1;;", false},
		{"SELECT 1 -- x\n; DELETE FROM t", false},
		{"SELECT 1; -- x\nSELECT 2", false},
		{"SHOW TABLES; DROP TABLE t", false},
		{"SELECT 1;\v", false}, // \v is not white space to every dialect
		// What cannot be read is refused.
		{"SELECT $$DELETE$$", false},
		{"SELECT $tag$x$tag$", false},
		{"SELECT $", false},
		{"SELECT 'unterminated", false},
		{`SELECT "unterminated`, false},
		{"SELECT `unterminated", false},
		{"SELECT 1 /* unterminated", false},
		{"SELECT 1 /* unterminated *", false},
		{`SELECT 'a\'`, false},
		{`SELECT 'a\`, false},
	}
	for _, c := range cases {
		if got := SQLReadOnly(c.q); got != c.want {
			t.Errorf("SQLReadOnly(%q) = %v, want %v", c.q, got, c.want)
		}
	}
}

func TestSQLWords(t *testing.T) {
	cases := []struct {
		q     string
		words []string
		ok    bool
	}{
		{"select a, b from t", []string{"SELECT", "A", "B", "FROM", "T"}, true},
		{"SELECT 'x' \"y\" `z` -- c\n /* d */ w", []string{"SELECT", "Y", "Z", "W"}, true},
		{"SELECT 1 # e", nil, false},
		{"SELECT 1 --x", nil, false},
		{"SELECT 1 /*! x */", nil, false},
		{"SELECT 1 /* /* */ */", nil, false},
		{"SELECT $1, a$b", []string{"SELECT", "A$B"}, true},
		{"SELECT 1;", []string{"SELECT"}, true},
		{"SELECT 1; x", nil, false},
		{"SELECT $x", nil, false},
		{"", nil, true},
	}
	for _, c := range cases {
		words, ok := sqlWords(c.q)
		if ok != c.ok || (ok && !slices.Equal(words, c.words)) {
			t.Errorf("sqlWords(%q) = %q, %v; want %q, %v", c.q, words, ok, c.words, c.ok)
		}
	}
}

// Queries SQLReadOnly accepts but that a real database runs as something
// else: the lexical rules of the dialects disagree (backslashes, '#',
// nested and executable comments, '--' without a space) or the write is
// behind a quoted name or an unlisted function. Each is reported.
func TestSQLReadOnlyDialectBypasses(t *testing.T) {
	cases := []struct{ name, q string }{
		{"PostgreSQL: backslash is not an escape in '…' (standard_conforming_strings)", `SELECT 'x\', pg_sleep(10) --'`},
		{"PostgreSQL: backslash, second statement", `SELECT 'a\'; DELETE FROM t; --'`},
		{"PostgreSQL: # is the XOR operator, not a comment", "SELECT 1 # 1, pg_sleep(10)"},
		{"PostgreSQL: # then a second statement", "SELECT 1 # 2; DELETE FROM t"},
		{"PostgreSQL: block comments nest", `SELECT 1 /* /* */ ' */, pg_sleep(10) -- '`},
		{"PostgreSQL: quoted function name", `SELECT "pg_sleep"(10)`},
		{"PostgreSQL: quoted, schema-qualified dblink_exec", `SELECT pg_catalog."dblink_exec"('dbname=prod', 'DELETE FROM users')`},
		{"MySQL: -- needs a space to start a comment", "SELECT 1 --1, SLEEP(10)"},
		{"MySQL: executable comment INTO OUTFILE", "SELECT * FROM t /*! INTO OUTFILE '/tmp/x' */"},
		{"MySQL: executable comment SLEEP", "SELECT 1 /*!50000 , SLEEP(10) */"},
		{"MySQL: backslash escapes in \"…\" strings", `SELECT "a\" ", SLEEP(10) -- "`},
		{"EXPLAIN (…, ANALYZE) runs the statement", "EXPLAIN (VERBOSE, ANALYZE) SELECT 1"},
		{"EXPLAIN ANALYSE (British spelling) runs the statement", "EXPLAIN ANALYSE SELECT 1"},
		{"PostgreSQL: advisory locks", "SELECT pg_advisory_lock(1)"},
		{"PostgreSQL: pg_notify", "SELECT pg_notify('channel', 'payload')"},
		{"PostgreSQL: large objects", "SELECT lo_unlink(16409)"},
		{"PostgreSQL: reload configuration", "SELECT pg_reload_conf()"},
		{"MySQL: GET_LOCK", "SELECT GET_LOCK('x', 10)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if SQLReadOnly(c.q) {
				t.Fatalf("SQLReadOnly(%q) = true", c.q)
			}
		})
	}
}

// sqlReference is an independent reading of the lexical rules
// SQLReadOnly documents ('…' with doubled quotes and backslash escapes,
// "…" and `…` with doubled quotes, -- and # to the end of the line, /* */,
// $n parameters): the text outside literals, quoted identifiers and
// comments, each replaced by a space; false when the text cannot be read.
func sqlReference(q string) (string, bool) {
	var b strings.Builder
	i := 0
	for i < len(q) {
		rest := q[i:]
		switch {
		case strings.HasPrefix(rest, "--") || rest[0] == '#':
			if n := strings.IndexByte(rest, '\n'); n >= 0 {
				i += n
			} else {
				i = len(q)
			}
			b.WriteByte(' ')
		case strings.HasPrefix(rest, "/*"):
			n := strings.Index(rest[2:], "*/")
			if n < 0 {
				return "", false
			}
			i += 2 + n + 2
			b.WriteByte(' ')
		case rest[0] == '\'' || rest[0] == '"' || rest[0] == '`':
			quote := rest[0]
			j, closed := 1, false
			for j < len(rest) && !closed {
				switch {
				case quote == '\'' && rest[j] == '\\':
					j += 2
				case rest[j] == quote && j+1 < len(rest) && rest[j+1] == quote:
					j += 2
				case rest[j] == quote:
					closed = true
					j++
				default:
					j++
				}
			}
			if !closed {
				return "", false
			}
			i += j
			b.WriteByte(' ')
		default:
			b.WriteByte(rest[0])
			i++
		}
	}
	return b.String(), true
}

// sqlReferenceWords splits bare text into maximal runs of word characters
// (ASCII letters and digits, '_', '$' and every byte from 0x80), ASCII
// upper-cased. The runs are never shorter than SQLReadOnly's words, so a
// run that is a keyword is also one of its words.
func sqlReferenceWords(bare string) []string {
	isWord := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
	}
	var words []string
	for i := 0; i < len(bare); {
		if !isWord(bare[i]) {
			i++
			continue
		}
		j := i
		for j < len(bare) && isWord(bare[j]) {
			j++
		}
		w := []byte(bare[i:j])
		for k, c := range w {
			if c >= 'a' && c <= 'z' {
				w[k] = c - 'a' + 'A'
			}
		}
		words = append(words, string(w))
		i = j
	}
	return words
}

// checkSQLReadOnly checks SQLReadOnly's answer for q against the
// reference reading; it returns a description of the disagreement.
func checkSQLReadOnly(q string) string {
	ro := SQLReadOnly(q)
	bare, ok := sqlReference(q)
	if !ok {
		if ro {
			return "read-only although the reference cannot read it"
		}
		return ""
	}
	if !ro {
		return ""
	}
	if i := strings.IndexByte(bare, ';'); i >= 0 && strings.Trim(bare[i+1:], " \t\n\r\f") != "" {
		return "read-only with a second statement: " + bare
	}
	words := sqlReferenceWords(bare)
	if len(words) == 0 {
		return "read-only without a word"
	}
	switch words[0] {
	case "SELECT", "WITH", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "VALUES", "TABLE":
	default:
		// The reference's first run may hold a leading digit or '$' that
		// SQLReadOnly skips; only a keyword run is a disagreement.
		if sqlWriteWords[words[0]] {
			return "read-only although it starts with " + words[0]
		}
	}
	// SQLReadOnly skips digits before a word: its first word is ours only
	// when ours starts with a letter or '_'.
	c := words[0][0]
	firstIsWord := c == '_' || c >= 'A' && c <= 'Z'
	for i, w := range words {
		if sqlWriteWords[w] {
			return "read-only with the bare word " + w
		}
		if (w == "INTO" || w == "FOR") && firstIsWord && words[0] != "SHOW" {
			return "read-only with the bare word " + w
		}
		if w == "ANALYZE" && i > 0 && words[i-1] == "EXPLAIN" {
			return "read-only with EXPLAIN ANALYZE"
		}
	}
	return ""
}

func TestSQLReadOnlyAgreesWithReference(t *testing.T) {
	parts := []string{"SELECT", "select", " ", "\n", "'", `"`, "`", "\\", "--", "#", "/*", "*/", ";", "$", "$1", "DELETE",
		"drop", "x", "INTO", "FOR", "SHOW", "EXPLAIN", "ANALYZE", "''", "é", "1", "(", ")"}
	// Every sequence of up to four parts.
	var gen func(prefix string, n int)
	count := 0
	gen = func(prefix string, n int) {
		if msg := checkSQLReadOnly(prefix); msg != "" {
			t.Errorf("SQLReadOnly(%q): %s", prefix, msg)
		}
		count++
		if n == 0 {
			return
		}
		for _, p := range parts {
			gen(prefix+p, n-1)
		}
	}
	gen("SELECT ", 4)
	if count < 100000 {
		t.Fatalf("only %d queries", count)
	}
}
