package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hikeshi/hikeshi/services/sanitize"
)

const tokenUsage = "create --name N --role viewer|responder|security|admin [--expires 90d] [--act-as] | list | revoke ID"

// tokenCmd manages API tokens through the hub (an admin's token, or the
// local operator of a hub without auth).
func tokenCmd(ctx context.Context, args []string, w io.Writer) error {
	return dispatch(ctx, args, w, subcommand{[]string{"create"}, tokenCreate},
		subcommand{[]string{"list", "ls"}, tokenList}, subcommand{[]string{"revoke"}, tokenRevoke})
}

type tokenView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	Token      string     `json:"token"`
}

func tokenCreate(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("token create", "--name N --role R [--expires 90d] [--act-as]")
	c := clientFlags(f)
	name := f.String("name", "", "what the token is for (ci, grafana, …)")
	role := f.String("role", "", "viewer, responder, security or admin")
	expires := f.String("expires", "90d", "lifetime: 90d, 12h, or never")
	actAs := f.Bool("act-as", false, "the token may name the person it acts for (X-Hikeshi-Actor): for integrations such as a chat bridge")
	// The token being made is not the one that authenticates the call:
	// --name/--role are this command's, --token/HIKESHI_TOKEN the caller's.
	if pos, err := f.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected %q", errUsage, strings.Join(pos, " "))
	}
	body := map[string]any{"name": *name, "role": *role, "expires": *expires}
	if *actAs {
		body["scopes"] = []string{"act-as"}
	}
	var t tokenView
	if done, err := c.fetch(ctx, w, http.MethodPost, "/api/v1/tokens", body, &t); done || err != nil {
		return err
	}
	exp := "never"
	if t.ExpiresAt != nil {
		exp = t.ExpiresAt.Local().Format(time.DateTime)
	}
	_, err := fmt.Fprintf(w, "%s\n\nid       %s\nname     %s\nrole     %s\nexpires  %s\n\nThis is the only time the token is shown; store it now (e.g. in HIKESHI_TOKEN).\n",
		t.Token, t.ID, sanitize.Line(t.Name), t.Role, exp)
	return err
}

func tokenList(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("token list", "")
	c := clientFlags(f)
	if _, err := f.parse(args); err != nil {
		return err
	}
	var out struct {
		Tokens []tokenView `json:"tokens"`
	}
	if done, err := c.fetch(ctx, w, http.MethodGet, "/api/v1/tokens", nil, &out); done || err != nil {
		return err
	}
	when := func(t *time.Time, none string) string {
		if t == nil {
			return none
		}
		return t.Local().Format(time.DateTime)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tSCOPES\tEXPIRES\tLAST USED\tREVOKED")
	for _, t := range out.Tokens {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, sanitize.Line(t.Name), t.Role, strings.Join(t.Scopes, ","),
			when(t.ExpiresAt, "never"), when(t.LastUsedAt, "never"), when(t.RevokedAt, "-"))
	}
	return tw.Flush()
}

func tokenRevoke(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("token revoke", "ID")
	c := clientFlags(f)
	pos, err := positional(f, args, 1)
	if err != nil {
		return err
	}
	var t tokenView
	if done, err := c.fetch(ctx, w, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(pos[0]), nil, &t); done || err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "revoked %s (%s)\n", t.ID, sanitize.Line(t.Name))
	return err
}
