package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"
)

// postmortem asks the hub's GitHub module to open (or find) the postmortem
// pull request now.
func postmortem(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("postmortem", "ID")
	c := clientFlags(f)
	pos, err := positional(f, args, 1)
	if err != nil {
		return err
	}
	var pr struct {
		Repo   string `json:"repo"`
		Number int    `json:"number"`
		URL    string `json:"url"`
	}
	if done, err := c.fetch(ctx, w, http.MethodPost, incidentPath(pos[0], "/postmortem"), map[string]string{}, &pr); done || err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s#%d %s\n", pr.Repo, pr.Number, pr.URL)
	return err
}

// followups lists what the CSIRT should chase.
func followups(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("followups", "")
	c := clientFlags(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: followups takes no arguments", errUsage)
	}
	var out struct {
		Followups []struct {
			CaseNumber  string    `json:"case_number"`
			Title       string    `json:"title"`
			Severity    string    `json:"severity"`
			Since       time.Time `json:"since"`
			Explanation string    `json:"explanation"`
			Postmortem  string    `json:"postmortem"`
		} `json:"followups"`
	}
	if done, err := c.fetch(ctx, w, http.MethodGet, "/api/v1/followups", nil, &out); done || err != nil {
		return err
	}
	if len(out.Followups) == 0 {
		_, err := fmt.Fprintln(w, "nothing to follow up")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tSEV\tTITLE\tWHY\tPOSTMORTEM")
	for _, f := range out.Followups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.CaseNumber, f.Severity, f.Title, f.Explanation, f.Postmortem)
	}
	return tw.Flush()
}
