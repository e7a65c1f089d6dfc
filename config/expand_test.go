package config

import (
	"strings"
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"HOST": "db.internal", "EMPTY": "", "DIR": "/srv"}
	tests := []struct{ value, want string }{
		{"${HOST}", "db.internal"},
		{"pre-${HOST}-post", "pre-db.internal-post"},
		{"${MISSING:-fallback}", "fallback"},
		{"${EMPTY:-fallback}", "fallback"},
		{"${HOST:-fallback}", "db.internal"},
		{"${MISSING:-}", ""},
		{"${EMPTY}", ""},
		{"$$", "$"},
		{"a$$b", "a$b"},
		{"$$${HOST}", "$db.internal"},
		{"$${HOST}", "${HOST}"},
		{"${DIR}/${HOST}", "/srv/db.internal"},
		{"${MISSING:-a:-b}", "a:-b"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			data := minimal + "    publication: '" + tt.value + "'\n"
			c, err := Parse([]byte(data), env(vars))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Sources[0].Publication; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("every kind of value", func(t *testing.T) {
		data := `
lake: ${LAKE}
sources:
  - name: ${NAME}
    url: postgres://${USER}@${HOST}/orders
    tables: ["${SCHEMA}.orders"]
    flush-rows: ${ROWS}
    flush-bytes: ${BYTES:-8MiB}
compaction:
  interval: ${INTERVAL}
`
		c, err := Parse([]byte(data), env(map[string]string{
			"LAKE": "/data/lake", "NAME": "orders", "USER": "cdc", "HOST": "h",
			"SCHEMA": "sales", "ROWS": "10", "INTERVAL": "1m",
		}))
		if err != nil {
			t.Fatal(err)
		}
		s := c.Sources[0]
		if c.Lake != "/data/lake" || s.Name != "orders" || s.URL != "postgres://cdc@h/orders" ||
			s.Tables[0] != "sales.orders" || s.FlushRows != 10 || s.FlushBytes != 8<<20 ||
			c.Compaction.Interval != time.Minute {
			t.Errorf("got %+v", c)
		}
	})
	t.Run("keys are not expanded", func(t *testing.T) {
		_, err := Parse([]byte(minimal+"    ${KEY}: 1\n"), env(map[string]string{"KEY": "slot"}))
		if err == nil || !strings.Contains(err.Error(), `"${KEY}": unknown key`) {
			t.Errorf("got %v", err)
		}
	})
}

func TestSecrets(t *testing.T) {
	const secret = "Zq-s3cr3t-Pw"
	vars := map[string]string{
		"PW":       secret,
		"USERPW":   "cdc:" + secret,
		"URL":      "postgres://cdc:" + secret + "@h/db",
		"BAD_URL":  "postgres://cdc:" + secret + "%zz@h/db",
		"NOT_PG":   "mysql://cdc:" + secret + "@h/db",
		"SECRETDR": secret,
	}
	allowed := []string{
		"postgres://cdc:${PW}@h:5432/db",
		"postgres://${USERPW}@h/db",
		"${URL}",
		"postgres://cdc@h/db?password=${PW}&sslmode=require",
		"postgres://cdc:@h/db",
		"postgres://cdc@h/db",
		"postgres://cdc:${PW}${PW}@h/db",
	}
	for _, u := range allowed {
		t.Run("allowed "+u, func(t *testing.T) {
			data := "sources:\n  - name: a\n    url: " + u + "\n"
			if _, err := Parse([]byte(data), env(vars)); err != nil {
				t.Errorf("refused: %v", err)
			}
		})
	}
	refused := []struct{ name, data string }{
		{"literal password", "sources:\n  - name: a\n    url: postgres://cdc:" + secret + "@h/db\n"},
		{"literal password, postgresql", "sources:\n  - name: a\n    url: postgresql://cdc:" + secret + "@h/db\n"},
		{"literal password beside a variable", "sources:\n  - name: a\n    url: postgres://cdc:${PW}" + secret + "@h/db\n"},
		{"password as a default", "sources:\n  - name: a\n    url: postgres://cdc:${PW:-" + secret + "}@h/db\n"},
		{"password parameter", "sources:\n  - name: a\n    url: postgres://cdc@h/db?sslmode=require&password=" + secret + "\n"},
		{"password in the catalog", "catalog: postgres://lake:" + secret + "@h/cat\n" + minimal},
		{"password with more errors", "sources:\n  - name: a\n    url: 'postgres://cdc:" + secret + "@h/db'\n    flush-rows: x\n"},
	}
	for _, tt := range refused {
		t.Run("refused "+tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data), env(vars))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), "a password is written in the file: write it as ${VAR}") {
				t.Errorf("no advice to use ${VAR}: %v", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	// values from the environment never show, wherever they end up
	shown := []string{
		"sources:\n  - name: a\n    url: ${BAD_URL}\n",
		"sources:\n  - name: a\n    url: ${NOT_PG}\n",
		"catalog: ${NOT_PG}\n" + minimal,
		"sources:\n  - name: ${PW}\n    url: postgres://h/db\n",
		"sources:\n  - name: a\n    url: postgres://h/db\n    flush-interval: ${PW}\n    flush-bytes: ${PW}\n    slot: ${PW}\n    snapshot: ${PW}\n",
		"lake: s3://${PW}:x@b\n" + minimal,
		"lake: ftp://${PW}\n" + minimal,
		"serve:\n  addr: ${PW}\n" + minimal,
		"sources:\n  - name: a\n    url: postgres://cdc:${PW}@h/db\n  - name: a\n    url: postgres://cdc:${PW}@h/db\n",
		"sources:\n  - name: a\n    url: postgres://cdc:${PW}@h/db\n    " + "flush-rows: ${SECRETDR}\n",
	}
	for i, data := range shown {
		_, err := Parse([]byte(data), env(vars))
		if err == nil {
			t.Errorf("case %d accepted", i)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("case %d shows a value from the environment: %v", i, err)
		}
	}
}

func TestLiteralPassword(t *testing.T) {
	tests := []struct {
		value string
		want  bool
	}{
		{"postgres://u:p@h/db", true},
		{"postgres://u:${P}@h/db", false},
		{"postgres://u:${P:-x}@h/db", true},
		{"postgres://u:${P:-}@h/db", true},
		{"postgres://u@h/db", false},
		{"postgres://${U}:${P}@h/db", false},
		{"postgres://${U}:p@h/db", true},
		{"postgres://h/db?password=p", true},
		{"postgres://h/db?PASSWORD=p", true},
		{"postgres://h/db?password=${P}", false},
		{"postgres://h/db?password=", false},
		{"postgres://h/db?passwords=p", false},
		{"postgres://h/db?a=b#password=p", false},
		{"postgres://h/a:b@c", false}, // in the path, not the user info
		{"postgres://u:p:q@h/db", true},
		{"s3://k:s@bucket", true},
		{"./lake", false},
		{"a:b@c", false},
		{"${URL}", false},
	}
	for _, tt := range tests {
		ps, err := splitRefs(tt.value)
		if err != nil {
			t.Fatal(err)
		}
		if got := literalPassword(ps); got != tt.want {
			t.Errorf("literalPassword(%q) = %v, want %v", tt.value, got, tt.want)
		}
	}
}
