package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/hikeshi/hikeshi/services/sanitize"
	"github.com/hikeshi/hikeshi/services/signals/ingest"
	"github.com/hikeshi/hikeshi/services/signals/projector"
)

const signalsUsage = "[--source S] [--fingerprint F] [--route R] [--rule R] [--flagged] [--limit N] [--before SEQ]"

// signalsCmd lists the latest signals and what became of each.
func signalsCmd(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("signals", signalsUsage)
	c := clientFlags(f)
	q := url.Values{}
	filters := map[string]*string{}
	for _, name := range []string{"source", "fingerprint", "route", "rule"} {
		usage := "only signals of this " + name
		switch name {
		case "route":
			usage = "only signals routed to incident, ticket, triage, none or drop"
		case "rule":
			usage = "only signals this rule decided (default: the default route)"
		}
		filters[name] = f.String(name, "", usage)
	}
	flagged := f.Bool("flagged", false, "only flagged decisions (a rule failed, or the route could not be carried out)")
	limit := f.Int("limit", 50, "at most this many signals, newest first (up to 1000)")
	before := f.Uint64("before", 0, "page back: only signals stored before this sequence (the hint at the end of a full page)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: signals takes no arguments", errUsage)
	}
	for name, v := range filters {
		if *v != "" {
			q.Set(name, *v)
		}
	}
	if *flagged {
		q.Set("flagged", "true")
	}
	q.Set("limit", strconv.Itoa(*limit))
	if *before > 0 {
		q.Set("before", strconv.FormatUint(*before, 10))
	}
	var out struct {
		Signals []projector.SignalDecision `json:"signals"`
		Before  uint64                     `json:"before"`
	}
	if done, err := c.fetch(ctx, w, http.MethodGet, ingest.PathGeneric+"?"+q.Encode(), nil, &out); done || err != nil {
		return err
	}
	if len(out.Signals) == 0 {
		_, err := fmt.Fprintln(w, "no signals")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tSTORED\tSOURCE\tSTATUS\tSEVERITY\tTITLE\tRULE\tROUTE\tWENT TO\tFINGERPRINT")
	for _, s := range out.Signals {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Seq, s.Time.Local().Format(time.DateTime), s.Source, s.Status,
			s.Severity, sanitize.Line(s.Title), s.Rule, s.Route, sanitize.Line(wentTo(s)), sanitize.Line(s.Fingerprint))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range out.Signals {
		if s.Flagged != "" {
			fmt.Fprintf(w, "FLAGGED %d: %s\n", s.Seq, sanitize.Line(s.Flagged))
		}
	}
	if out.Before > 0 {
		fmt.Fprintf(w, "more: hikeshi signals --before %d\n", out.Before)
	}
	return nil
}

// wentTo says where a signal went: its incident's case number, its
// ticket, or why nothing was done.
func wentTo(s projector.SignalDecision) string {
	switch {
	case s.CaseNumber != "":
		return s.CaseNumber
	case s.Incident != "":
		return s.Incident
	case s.Ticket != "":
		return s.Ticket
	case s.Note != "":
		return s.Note
	}
	return "-"
}
