package signals

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/hikeshi/hikeshi/adapters/httpx"
	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/integration"
)

// GitHubConfig: alert tickets as GitHub issues, one per fingerprint.
type GitHubConfig struct {
	BaseURL  string   `yaml:"base_url"` // default https://api.github.com/
	Repo     string   `yaml:"repo"`     // owner/name
	TokenEnv string   `yaml:"token_env"`
	Labels   []string `yaml:"labels"`
}

type tickets struct {
	gh          *github.Client
	owner, repo string
	labels      []string
	effects     *natsjs.Effects
	env         *hub.Env
	st          *states // the projector's, for the group's incident
}

func newTickets(c GitHubConfig, token string, client *http.Client, env *hub.Env) (*tickets, error) {
	owner, repo, ok := strings.Cut(c.Repo, "/")
	if !ok || owner == "" || repo == "" {
		return nil, fmt.Errorf("signals.github.repo %q must be owner/name", c.Repo)
	}
	t := &httpx.Transport{RateLimited: func(r *http.Response) bool {
		return r.StatusCode == http.StatusForbidden && (r.Header.Get("Retry-After") != "" || r.Header.Get("X-RateLimit-Remaining") == "0")
	}}
	if client != nil && client.Transport != nil {
		t.Base = client.Transport
	}
	gh := github.NewClient(integration.Client("Bearer "+token, t))
	if c.BaseURL != "" {
		u, err := url.Parse(strings.TrimSuffix(c.BaseURL, "/") + "/")
		if err != nil {
			return nil, fmt.Errorf("signals.github.base_url: %w", err)
		}
		gh.BaseURL = u
	}
	return &tickets{gh: gh, owner: owner, repo: repo, labels: c.Labels, effects: env.Effects, env: env}, nil
}

// fpLabel finds a fingerprint's issue again (look up before create).
func fpLabel(sig *events.Signal) string {
	return "hikeshi-fp-" + natsjs.EffectKey(sig.Source + "\x00" + sig.Fingerprint)[:16]
}

// apply carries one signal to its fingerprint's issue: open it on the
// first firing, comment on a new occurrence (unless rate-limited), close
// it with a comment when resolved, reopen it with a comment when it fires
// again. Each step is an effect keyed by the signal, so a redelivery does
// nothing twice.
func (t *tickets) apply(ctx context.Context, e events.Stored, sig *events.Signal, fp *fpState, d *Decision, notify bool) (bool, error) {
	switch {
	case fp.Ticket == 0 && sig.Status == events.SignalFiring:
		n, err := natsjs.Once(ctx, t.effects, natsjs.EffectKey("signals", "ticket", sig.Source, sig.Fingerprint), func(ctx context.Context) (int, error) {
			return t.open(ctx, sig, fp, d)
		})
		if err != nil {
			return false, err
		}
		fp.Ticket, fp.TicketOpen = n, true
		return true, nil
	case fp.Ticket == 0:
		return false, nil // resolved before any ticket: nothing to close
	case sig.Status == events.SignalResolved && fp.TicketOpen:
		err := t.step(ctx, e, fp.Ticket, "closed", fmt.Sprintf("Resolved at the source (%s).", sig.Source))
		fp.TicketOpen = err != nil
		return err == nil, err
	case sig.Status == events.SignalFiring && !fp.TicketOpen:
		err := t.step(ctx, e, fp.Ticket, "open", fmt.Sprintf("Firing again (occurrence %d, started %s).", fp.Occurrences, sig.StartsAt.Format(time.RFC3339)))
		fp.TicketOpen = err == nil
		return err == nil, err
	case sig.Status == events.SignalFiring && notify:
		return false, t.step(ctx, e, fp.Ticket, "", fmt.Sprintf("Fired again (occurrence %d, started %s).", fp.Occurrences, sig.StartsAt.Format(time.RFC3339)))
	}
	return false, nil
}

// step comments on an issue and moves it to state ("" keeps it), once per
// signal.
func (t *tickets) step(ctx context.Context, e events.Stored, number int, state, comment string) error {
	_, err := natsjs.Once(ctx, t.effects, natsjs.EffectKey("signals", "ticket-step", e.ID), func(ctx context.Context) (bool, error) {
		if _, resp, err := t.gh.Issues.CreateComment(ctx, t.owner, t.repo, number, &github.IssueComment{Body: github.String(comment)}); err != nil {
			return false, final(resp, err)
		}
		if state != "" {
			if _, resp, err := t.gh.Issues.Edit(ctx, t.owner, t.repo, number, &github.IssueRequest{State: github.String(state)}); err != nil {
				return false, final(resp, err)
			}
		}
		return true, nil
	})
	return err
}

func final(resp *github.Response, err error) error {
	if resp != nil {
		return integration.Final(resp.StatusCode, err)
	}
	return err
}

// open finds the fingerprint's issue by its label, or creates it, then
// adds the enrichment comment.
func (t *tickets) open(ctx context.Context, sig *events.Signal, fp *fpState, d *Decision) (int, error) {
	label := fpLabel(sig)
	found, resp, err := t.gh.Issues.ListByRepo(ctx, t.owner, t.repo, &github.IssueListByRepoOptions{
		Labels: []string{label}, State: "all", ListOptions: github.ListOptions{PerPage: 1},
	})
	if err != nil {
		return 0, final(resp, err)
	}
	if len(found) > 0 {
		return found[0].GetNumber(), nil
	}
	labels := append([]string{label, "source:" + sig.Source, "severity:" + sig.Severity}, t.labels...)
	if d.Priority != "" {
		labels = append(labels, "priority:"+d.Priority)
	}
	body := ticketBody(sig, d)
	issue, resp, err := t.gh.Issues.Create(ctx, t.owner, t.repo, &github.IssueRequest{
		Title: github.String(truncate("["+sig.Source+"] "+sig.Title, 250)), Body: github.String(body), Labels: &labels,
	})
	if err != nil {
		return 0, final(resp, err)
	}
	enrich := t.enrichment(ctx, sig, fp, d)
	if _, resp, err := t.gh.Issues.CreateComment(ctx, t.owner, t.repo, issue.GetNumber(), &github.IssueComment{Body: github.String(enrich)}); err != nil {
		return 0, final(resp, err)
	}
	return issue.GetNumber(), nil
}

func ticketBody(sig *events.Signal, d *Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** %s from `%s` (severity %s)\n\n", sig.Kind, sig.Status, sig.Source, sig.Severity)
	if sig.Summary != "" {
		b.WriteString(sig.Summary + "\n\n")
	}
	for _, kv := range [][2]string{{"Fingerprint", sig.Fingerprint}, {"Group", d.GroupKey}, {"Account", sig.Account},
		{"Project", sig.Project}, {"Region", sig.Region}, {"Resource", sig.Resource}, {"Started", sig.StartsAt.Format(time.RFC3339)}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "- %s: `%s`\n", kv[0], kv[1])
		}
	}
	for _, k := range sortedKeys(d.Annotations) {
		fmt.Fprintf(&b, "- %s: %s\n", k, d.Annotations[k])
	}
	if d.Flagged != "" {
		fmt.Fprintf(&b, "\n> Routed by the default: %s\n", d.Flagged)
	}
	return b.String()
}

// enrichment is the investigation comment: the source's links, the open
// incident of the same group, and previous occurrences.
func (t *tickets) enrichment(ctx context.Context, sig *events.Signal, fp *fpState, d *Decision) string {
	var b strings.Builder
	b.WriteString("### Investigation\n\n**Source links**\n")
	if len(sig.Links) == 0 {
		b.WriteString("- none given\n")
	}
	for _, l := range sig.Links {
		fmt.Fprintf(&b, "- [%s](%s)\n", first(l.Title, l.URL), l.URL)
	}
	b.WriteString("\n**Related open incidents**\n")
	var g groupState
	related := false
	if _, err := t.st.get(ctx, "group."+natsjs.EffectKey(d.GroupKey), &g); err == nil && g.Incident != "" {
		if st, err := t.env.Commands.Get(ctx, g.Incident); err == nil && st.Open() {
			fmt.Fprintf(&b, "- %s %s (%s)\n", st.CaseNumber, st.DisplayTitle(), st.Status)
			related = true
		}
	}
	if !related {
		b.WriteString("- none for this group\n")
	}
	fmt.Fprintf(&b, "\n**Previous occurrences**\n- %d so far, first seen %s\n", fp.Occurrences, fp.FirstSeen)
	return b.String()
}
