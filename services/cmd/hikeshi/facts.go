package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/hikeshi/hikeshi/services/sanitize"
)

// Facts with their own time on the command line: evidence and its chain
// of custody, and the milestones of the response.

const evidenceUsage = "add|handover|ls ID …"

// evidenceCmd dispatches hikeshi evidence add|handover|ls.
func evidenceCmd(ctx context.Context, args []string, w io.Writer) error {
	return dispatch(ctx, args, w, subcommand{[]string{"add"}, evidenceAdd},
		subcommand{[]string{"handover"}, evidenceHandover}, subcommand{[]string{"ls"}, evidenceLs})
}

func evidenceAdd(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("evidence add", "ID --name N --sha256 HEX --location L --custodian C [--description D]")
	c := clientFlags(f)
	name := f.String("name", "", "what the item is (required)")
	sum := f.String("sha256", "", "SHA-256 of the item, 64 hex digits as sha256sum prints it (required)")
	loc := f.String("location", "", "where the item is stored (required)")
	cust := f.String("custodian", "", "who holds it (required)")
	desc := f.String("description", "", "more about the item")
	pos, err := positional(f, args, 1)
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodPost, incidentPath(pos[0], "/evidence"), map[string]string{
		"name": *name, "sha256": *sum, "location": *loc, "custodian": *cust, "description": *desc}, new(json.RawMessage)); err != nil {
		return err
	}
	return printEvidence(ctx, c, w, pos[0])
}

func evidenceHandover(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("evidence handover", "ID EVIDENCE --to C [--from C] [--reason R] [--at TIME]")
	c := clientFlags(f)
	to := f.String("to", "", "the new custodian (required)")
	from := f.String("from", "", "the current custodian, checked against the record")
	reason := f.String("reason", "", "why it changes hands")
	at := f.String("at", "", "when it changed hands, RFC 3339 (default: now)")
	pos, err := positional(f, args, 2)
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodPost, incidentPath(pos[0], "/evidence/", pos[1], "/handover"), map[string]string{
		"to": *to, "from": *from, "reason": *reason, "at": *at}, new(json.RawMessage)); err != nil {
		return err
	}
	return printEvidence(ctx, c, w, pos[0])
}

func evidenceLs(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("evidence ls", "ID")
	c := clientFlags(f)
	pos, err := positional(f, args, 1)
	if err != nil {
		return err
	}
	return printEvidence(ctx, c, w, pos[0])
}

// printEvidence lists an incident's evidence, each item with its chain of
// custody.
func printEvidence(ctx context.Context, c *client, w io.Writer, id string) error {
	var out struct {
		Evidence []struct {
			ID, Name, SHA256, Location, Custodian string
			AddedAt                               time.Time `json:"added_at"`
			AddedBy                               string    `json:"added_by"`
			Custody                               []struct {
				From, To, Reason string
				At               time.Time
			}
		}
	}
	if done, err := c.fetch(ctx, w, http.MethodGet, incidentPath(id, "/evidence"), nil, &out); done || err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSHA256\tCUSTODIAN\tLOCATION")
	for _, e := range out.Evidence {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.ID, sanitize.Line(e.Name), e.SHA256, sanitize.Line(e.Custodian), sanitize.Line(e.Location))
		fmt.Fprintf(tw, "\t  %s added, held by the first custodian\t\t\t\n", e.AddedAt.Local().Format(time.DateTime))
		for _, h := range e.Custody {
			fmt.Fprintf(tw, "\t  %s %s → %s\t%s\t\t\n", h.At.Local().Format(time.DateTime), sanitize.Line(h.From), sanitize.Line(h.To), sanitize.Line(h.Reason))
		}
	}
	return tw.Flush()
}

// milestonesCmd lists an incident's milestones: recorded or derived.
func milestonesCmd(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("milestones", "ID")
	c := clientFlags(f)
	pos, err := positional(f, args, 1)
	if err != nil {
		return err
	}
	var out struct {
		Milestones []struct {
			Name, Source, From string
			At                 time.Time
		}
	}
	if done, err := c.fetch(ctx, w, http.MethodGet, incidentPath(pos[0], "/milestones"), nil, &out); done || err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, m := range out.Milestones {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Name, m.At.Local().Format(time.DateTime), m.Source)
	}
	return tw.Flush()
}
