package fakeappinsights

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
)

// columnsInOrder are the columns in the order rows are rendered (storedRow)
// and answered when a query projects nothing else: the receiver's projection.
var columnsInOrder = appinsights.Columns[:]

// query is a parsed KQL request in the receiver's shape (see doc.go).
type query struct {
	names        map[string]bool // nil: all
	agents       map[string]bool // nil: all
	hasIngest    bool            // extend ingest = ingestion_time() seen
	lower, upper bound
	columns      []string
	take         int // 0: no limit
	ordered      bool
}

type bound struct {
	set       bool
	t         time.Time
	inclusive bool
}

func (b bound) admitsAbove(t time.Time) bool { // t is above a lower bound
	if !b.set {
		return true
	}
	return t.After(b.t) || (b.inclusive && t.Equal(b.t))
}

func (b bound) admitsBelow(t time.Time) bool { // t is below an upper bound
	if !b.set {
		return true
	}
	return t.Before(b.t) || (b.inclusive && t.Equal(b.t))
}

type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

func syntaxErr(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...)}
}

func parseQuery(text string) (*query, error) {
	stages := strings.Split(text, "|")
	if strings.TrimSpace(stages[0]) != appinsights.Table {
		return nil, syntaxErr("unsupported source %q: only %s is served", strings.TrimSpace(stages[0]), appinsights.Table)
	}
	q := &query{columns: columnsInOrder}
	for _, stage := range splitStages(stages[1:]) {
		if err := q.apply(strings.TrimSpace(stage)); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// splitStages re-joins pieces split on a '|' that sat inside a string literal.
func splitStages(pieces []string) []string {
	var out []string
	for i := 0; i < len(pieces); i++ {
		s := pieces[i]
		for !balancedQuotes(s) && i+1 < len(pieces) {
			i++
			s += "|" + pieces[i]
		}
		out = append(out, s)
	}
	return out
}

func balancedQuotes(s string) bool {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == '\\':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		}
	}
	return quote == 0
}

func (q *query) apply(stage string) error {
	fields := strings.Fields(stage)
	if len(fields) == 0 {
		return syntaxErr("empty operator")
	}
	switch fields[0] {
	case "where":
		return q.applyWhere(strings.TrimSpace(strings.TrimPrefix(stage, "where")))
	case "extend":
		if strings.Join(fields, "") != strings.ReplaceAll(appinsights.ExtendIngest, " ", "") {
			return syntaxErr("unsupported extend %q", stage)
		}
		q.hasIngest = true
	case "project":
		var cols []string
		for _, c := range strings.Split(strings.TrimPrefix(stage, "project"), ",") {
			c = strings.TrimSpace(c)
			if appinsights.ColumnType(c) == "" {
				return syntaxErr("project: unknown column %q", c)
			}
			if c == appinsights.ColIngest && !q.hasIngest {
				return syntaxErr("project: ingest is not defined (extend ingest = ingestion_time() first)")
			}
			cols = append(cols, c)
		}
		q.columns = cols
	case "order", "sort":
		// The receiver's order, or by ingestion time alone.
		order := "order " + strings.Join(fields[1:], " ") // "sort" is a synonym
		if order != appinsights.OrderByIngest && order != "order by "+appinsights.ColIngest+" asc" {
			return syntaxErr("unsupported order %q: only %q", stage, appinsights.OrderByIngest)
		}
		q.ordered = true
	case "take", "limit":
		if len(fields) != 2 {
			return syntaxErr("%s needs one number", fields[0])
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil || n < 0 {
			return syntaxErr("%s: %q is not a row count", fields[0], fields[1])
		}
		q.take = n
	default:
		return syntaxErr("unsupported operator %q", fields[0])
	}
	return nil
}

func (q *query) applyWhere(cond string) error {
	switch {
	case strings.HasPrefix(cond, appinsights.ColName+" in"):
		set, err := parseStringList(strings.TrimPrefix(cond, appinsights.ColName+" in"))
		if err != nil {
			return err
		}
		q.names = set
	case strings.HasPrefix(cond, appinsights.ColRoleInstance+" in"):
		set, err := parseStringList(strings.TrimPrefix(cond, appinsights.ColRoleInstance+" in"))
		if err != nil {
			return err
		}
		q.agents = set
	case strings.HasPrefix(cond, appinsights.ColIngest+" "):
		if !q.hasIngest {
			return syntaxErr("where: ingest is not defined (extend ingest = ingestion_time() first)")
		}
		for _, part := range strings.Split(cond, " and ") {
			if err := q.applyIngestBound(strings.TrimSpace(part)); err != nil {
				return err
			}
		}
	default:
		return syntaxErr("unsupported where %q", cond)
	}
	return nil
}

func (q *query) applyIngestBound(cond string) error {
	fields := strings.Fields(cond)
	if len(fields) != 3 || fields[0] != appinsights.ColIngest {
		return syntaxErr("unsupported condition %q: want ingest <op> datetime(...)", cond)
	}
	lit := fields[2]
	if !strings.HasPrefix(lit, "datetime(") || !strings.HasSuffix(lit, ")") {
		return syntaxErr("unsupported literal %q: want datetime(...)", lit)
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSuffix(strings.TrimPrefix(lit, "datetime("), ")"))
	if err != nil {
		return syntaxErr("bad datetime %q: %v", lit, err)
	}
	switch fields[1] {
	case ">":
		q.lower = bound{set: true, t: t}
	case ">=":
		q.lower = bound{set: true, t: t, inclusive: true}
	case "<":
		q.upper = bound{set: true, t: t}
	case "<=":
		q.upper = bound{set: true, t: t, inclusive: true}
	default:
		return syntaxErr("unsupported comparison %q", fields[1])
	}
	return nil
}

// parseStringList reads ("a", 'b', ...) with backslash escapes.
func parseStringList(s string) (map[string]bool, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "(") || !strings.HasSuffix(s, ")") {
		return nil, syntaxErr("in: want a parenthesised list, got %q", s)
	}
	s = s[1 : len(s)-1]
	set := map[string]bool{}
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if s == "" {
			return set, nil
		}
		quote := s[0]
		if quote != '"' && quote != '\'' {
			return nil, syntaxErr("in: want a string literal at %q", s)
		}
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != quote; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				default:
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(s[i])
		}
		if i >= len(s) {
			return nil, syntaxErr("in: unterminated string literal")
		}
		set[b.String()] = true
		s = strings.TrimLeft(s[i+1:], " \t\r\n")
		if strings.HasPrefix(s, ",") {
			s = s[1:]
		} else if s != "" {
			return nil, syntaxErr("in: want ',' at %q", s)
		}
	}
}

// parseTimespan reads an ISO 8601 duration or interval relative to now.
func parseTimespan(s string, now time.Time) (from, to time.Time, err error) {
	if s == "" {
		return time.Time{}, time.Time{}, nil
	}
	if start, end, ok := strings.Cut(s, "/"); ok {
		from, err = time.Parse(time.RFC3339Nano, start)
		if err != nil {
			return from, to, syntaxErr("timespan: bad start %q", start)
		}
		if strings.HasPrefix(end, "P") {
			d, err := parseISODuration(end)
			return from, from.Add(d), err
		}
		to, err = time.Parse(time.RFC3339Nano, end)
		if err != nil {
			return from, to, syntaxErr("timespan: bad end %q", end)
		}
		return from, to, nil
	}
	d, err := parseISODuration(s)
	return now.Add(-d), now, err
}

// parseISODuration reads PnD, PTnHnMnS and their combinations.
func parseISODuration(s string) (time.Duration, error) {
	if !strings.HasPrefix(s, "P") {
		return 0, syntaxErr("timespan: bad duration %q", s)
	}
	var total time.Duration
	inTime := false
	num := ""
	for _, c := range s[1:] {
		switch {
		case c == 'T':
			inTime = true
		case (c >= '0' && c <= '9') || c == '.':
			num += string(c)
		default:
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, syntaxErr("timespan: bad duration %q", s)
			}
			num = ""
			var unit time.Duration
			switch {
			case c == 'D' && !inTime:
				unit = 24 * time.Hour
			case c == 'W' && !inTime:
				unit = 7 * 24 * time.Hour
			case c == 'H' && inTime:
				unit = time.Hour
			case c == 'M' && inTime:
				unit = time.Minute
			case c == 'S' && inTime:
				unit = time.Second
			default:
				return 0, syntaxErr("timespan: unsupported unit %q in %q", c, s)
			}
			total += time.Duration(v * float64(unit))
		}
	}
	if num != "" {
		return 0, syntaxErr("timespan: bad duration %q", s)
	}
	return total, nil
}
