package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/hikeshi/hikeshi/services/sanitize"
)

const (
	showUsage = "ID [--as-of TIME|SEQ]"
	diffUsage = "ID --from TIME|SEQ [--to TIME|SEQ]"
)

// pointQuery is the query selecting an incident's past state: a stream
// sequence when at is a number, an RFC 3339 time otherwise; none for "".
func pointQuery(at string) string {
	switch {
	case at == "":
		return ""
	case isSeq(at):
		return "?seq=" + at
	}
	return "?as_of=" + url.QueryEscape(at)
}

func isSeq(at string) bool {
	_, err := strconv.ParseUint(at, 10, 64)
	return err == nil
}

// diff prints the fields that differ between the incident at --from and at
// --to (default: now), then the events recorded in between.
func diff(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("diff", diffUsage)
	c := clientFlags(f)
	from := f.String("from", "", "RFC 3339 time or stream sequence to compare from (required)")
	to := f.String("to", "", "RFC 3339 time or stream sequence to compare to (default: now)")
	pos, err := positional(f, args, 1)
	if err != nil {
		return err
	}
	if *from == "" {
		return fmt.Errorf("%w: --from is required", errUsage)
	}
	before, err := c.stateAt(ctx, pos[0], *from)
	if err != nil {
		return err
	}
	after, err := c.stateAt(ctx, pos[0], *to)
	if err != nil {
		return err
	}
	fromVersion, _ := before["version"].(float64)
	toVersion, _ := after["version"].(float64)
	between, err := c.timelineBetween(ctx, pos[0], uint64(fromVersion), uint64(toVersion))
	if err != nil {
		return err
	}
	if c.asJSON {
		return json.NewEncoder(w).Encode(map[string]any{"from": before, "to": after, "changed": changedFields(before, after), "events": between})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	changed := changedFields(before, after)
	if len(changed) == 0 {
		fmt.Fprintln(tw, "no field changed")
	}
	for _, k := range changed {
		fmt.Fprintf(tw, "%s\t%s\t→ %s\n", k, sanitize.Line(jsonText(before[k])), sanitize.Line(jsonText(after[k])))
	}
	fmt.Fprintf(tw, "\n%d event(s) between version %d and %d:\n", len(between), uint64(fromVersion), uint64(toVersion))
	for _, e := range between {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", e.Seq, e.Time.Local().Format(time.DateTime), sanitize.Line(e.Actor), sanitize.Line(describe(e.Type, e.Data)))
	}
	return tw.Flush()
}

// timelineBetween is the incident's timeline after stream sequence after,
// up to until, read a page at a time.
func (c *client) timelineBetween(ctx context.Context, ref string, after, until uint64) ([]entryView, error) {
	var out []entryView
	for after < until {
		var page struct {
			Events []entryView `json:"events"`
		}
		if err := c.do(ctx, http.MethodGet, incidentPath(ref, "/timeline")+"?after="+strconv.FormatUint(after, 10), nil, &page); err != nil {
			return nil, err
		}
		if len(page.Events) == 0 {
			break
		}
		for _, e := range page.Events {
			if e.Seq <= until {
				out = append(out, e)
			}
		}
		after = page.Events[len(page.Events)-1].Seq
	}
	return out, nil
}

// stateAt is the incident at a time or sequence as a JSON object; before
// its declaration, an empty one (everything is new); at "", now.
func (c *client) stateAt(ctx context.Context, ref, at string) (map[string]any, error) {
	st := map[string]any{}
	err := c.do(ctx, http.MethodGet, incidentPath(ref)+pointQuery(at), nil, &st)
	var ae *answerError
	if errors.As(err, &ae) && ae.code == "not_yet_declared" {
		return map[string]any{}, nil
	}
	return st, err
}

// changedFields lists, sorted, the fields whose values differ; the event
// count and the update time always move with the version, so they are
// left out.
func changedFields(a, b map[string]any) []string {
	var out []string
	for _, m := range []map[string]any{a, b} {
		for k := range m {
			if k == "events" || k == "updated_at" || slices.Contains(out, k) {
				continue
			}
			if jsonText(a[k]) != jsonText(b[k]) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

// jsonText renders a value compactly; "-" for an absent one.
func jsonText(v any) string {
	if v == nil {
		return "-"
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(bytes.TrimSpace(b))
}
