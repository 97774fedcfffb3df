// Package tickets keeps one alert ticket per signal fingerprint in GitHub
// issues or JIRA: opened on the first firing, commented on, closed when
// resolved and reopened when it fires again, each step once.
package tickets

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/adapters/github"
	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/sanitize"
	"github.com/hikeshi/hikeshi/services/signals/rules"
)

// GitHub: alert tickets as GitHub issues, one per fingerprint.
type GitHub struct {
	BaseURL  string   `yaml:"base_url"` // default https://api.github.com/
	Repo     string   `yaml:"repo"`     // owner/name
	TokenEnv string   `yaml:"token_env"`
	Labels   []string `yaml:"labels"`
}

// tracker is where alert tickets live: GitHub issues or JIRA issues.
// A ticket is named by ref (an issue number, an issue key).
type tracker interface {
	// find returns the ticket carrying label, if any (look up before create).
	find(ctx context.Context, label string) (ref string, ok bool, err error)
	create(ctx context.Context, sig *events.Signal, d *rules.Decision, label, body string) (ref string, err error)
	comment(ctx context.Context, ref, text string) error
	// move closes (open false) or reopens the ticket.
	move(ctx context.Context, ref string, open bool) error
	// kind names the tracker in effect keys, so switching trackers opens
	// new tickets rather than reusing the other tracker's refs.
	kind() string
}

// Tracker carries signals to their tickets.
type Tracker struct {
	tr      tracker
	effects natsjs.Ledger
	// related is the open incident of a group, if any, for the
	// investigation comment.
	related func(ctx context.Context, groupKey string) (incident.State, bool)
	// repo prefixes GitHub issue numbers in Name.
	repo string
}

// State is a fingerprint's ticket, kept with the fingerprint's state.
type State struct {
	Ticket     int    `json:"ticket,omitempty"`     // GitHub issue number
	TicketRef  string `json:"ticket_ref,omitempty"` // JIRA issue key
	TicketOpen bool   `json:"ticket_open,omitempty"`
}

// Occurrence is the fingerprint's history the ticket's comments tell.
type Occurrence struct {
	Count     int    // occurrences so far
	FirstSeen string // RFC 3339
}

// New is the tracker configured by gh or jira (at most one), nil when
// neither is; related finds the open incident of a group.
func New(gh *GitHub, jira *Jira, token string, client *http.Client, effects natsjs.Ledger,
	related func(ctx context.Context, groupKey string) (incident.State, bool)) (*Tracker, error) {
	var tr tracker
	var err error
	repo := ""
	switch {
	case gh != nil:
		tr, err = newGitHub(*gh, token, client)
		repo = gh.Repo
	case jira != nil:
		tr, err = newJira(*jira, token, client)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &Tracker{tr: tr, effects: effects, related: related, repo: repo}, nil
}

// Name names a ticket for people: owner/repo#N or a JIRA key.
func (t *Tracker) Name(ref string) string {
	if t.repo != "" {
		return t.repo + "#" + ref
	}
	return ref
}

type githubTracker struct {
	gh     *github.Client
	repo   github.Repo
	labels []string
}

func newGitHub(c GitHub, token string, client *http.Client) (*githubTracker, error) {
	repo, err := github.ParseRepo(c.Repo)
	if err != nil {
		return nil, fmt.Errorf("signals.github.repo: %w", err)
	}
	cfg := github.Config{BaseURL: c.BaseURL, Token: token}
	if client != nil {
		cfg.Base = client.Transport
	}
	gh, err := github.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("signals.github.base_url: %w", err)
	}
	return &githubTracker{gh: gh, repo: repo, labels: c.Labels}, nil
}

// Label finds a fingerprint's issue again (look up before create).
func Label(sig *events.Signal) string {
	return "hikeshi-fp-" + natsjs.EffectKey(sig.Source + "\x00" + sig.Fingerprint)[:16]
}

// Apply carries one signal to its fingerprint's ticket: open it on the
// first firing, comment on a new occurrence (unless rate-limited), close
// it with a comment when resolved, reopen it with a comment when it fires
// again. Each step is an effect keyed by the signal, so a redelivery does
// nothing twice.
func (t *Tracker) Apply(ctx context.Context, e events.Stored, sig *events.Signal, fp *State, occ Occurrence, d *rules.Decision, notify bool) (bool, error) {
	ref := fp.Ref()
	switch {
	case ref == "" && sig.Status == events.SignalFiring:
		if err := t.openOnce(ctx, sig, fp, occ, d); err != nil {
			return false, err
		}
		fp.TicketOpen = true
		return true, nil
	case ref == "":
		return false, nil // resolved before any ticket: nothing to close
	case sig.Status == events.SignalResolved && fp.TicketOpen:
		err := t.step(ctx, e, ref, moveClose, fmt.Sprintf("Resolved at the source (%s).", sig.Source))
		fp.TicketOpen = err != nil
		return err == nil, err
	case sig.Status == events.SignalFiring && !fp.TicketOpen:
		err := t.step(ctx, e, ref, moveReopen, fmt.Sprintf("Firing again (occurrence %d, started %s).", occ.Count, sig.StartsAt.Format(time.RFC3339)))
		fp.TicketOpen = err == nil
		return err == nil, err
	case sig.Status == events.SignalFiring && notify:
		return false, t.step(ctx, e, ref, moveNone, fmt.Sprintf("Fired again (occurrence %d, started %s).", occ.Count, sig.StartsAt.Format(time.RFC3339)))
	}
	return false, nil
}

// Ref names the fingerprint's ticket: a JIRA key, or a GitHub issue
// number (kept as a number, as the state and ledger first stored it).
func (fp *State) Ref() string {
	if fp.TicketRef != "" {
		return fp.TicketRef
	}
	if fp.Ticket != 0 {
		return strconv.Itoa(fp.Ticket)
	}
	return ""
}

// openOnce finds or opens the fingerprint's ticket once.
func (t *Tracker) openOnce(ctx context.Context, sig *events.Signal, fp *State, occ Occurrence, d *rules.Decision) error {
	if _, ok := t.tr.(*githubTracker); ok {
		n, err := natsjs.Once(ctx, t.effects, natsjs.EffectKey("signals", "ticket", sig.Source, sig.Fingerprint), func(ctx context.Context) (int, error) {
			ref, err := t.open(ctx, sig, occ, d)
			if err != nil {
				return 0, err
			}
			return strconv.Atoi(ref)
		})
		fp.Ticket = n
		return err
	}
	ref, err := natsjs.Once(ctx, t.effects, natsjs.EffectKey("signals", "ticket", t.tr.kind(), sig.Source, sig.Fingerprint), func(ctx context.Context) (string, error) {
		return t.open(ctx, sig, occ, d)
	})
	fp.TicketRef = ref
	return err
}

const (
	moveNone = iota
	moveClose
	moveReopen
)

// step comments on a ticket and closes or reopens it, once per signal.
func (t *Tracker) step(ctx context.Context, e events.Stored, ref string, move int, comment string) error {
	_, err := natsjs.Once(ctx, t.effects, natsjs.EffectKey("signals", "ticket-step", e.ID), func(ctx context.Context) (bool, error) {
		if err := t.tr.comment(ctx, ref, sanitize.Text(comment)); err != nil {
			return false, err
		}
		if move != moveNone {
			if err := t.tr.move(ctx, ref, move == moveReopen); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	return err
}

// open finds the fingerprint's ticket by its label, or creates it, then
// adds the enrichment comment. The label is searched before every create
// (integration.Finder), so an answer lost after the tracker created the
// ticket does not make a second one.
func (t *Tracker) open(ctx context.Context, sig *events.Signal, occ Occurrence, d *rules.Decision) (string, error) {
	label := Label(sig)
	ref, created, err := integration.Finder[string]{
		Effects: t.effects, Key: natsjs.EffectKey("signals", "ticket-create", t.tr.kind(), sig.Source, sig.Fingerprint),
		Find: func(ctx context.Context) (string, bool, error) { return t.tr.find(ctx, label) },
		Create: func(ctx context.Context) (string, error) {
			return t.tr.create(ctx, sig, d, label, sanitize.Text(ticketBody(sig, d)))
		},
	}.FindOrCreate(ctx)
	if err != nil || !created {
		return ref, err
	}
	if err := t.tr.comment(ctx, ref, sanitize.Text(t.enrichment(ctx, sig, occ, d))); err != nil {
		return "", err
	}
	return ref, nil
}

func (g *githubTracker) kind() string { return "github" }

func (g *githubTracker) find(ctx context.Context, label string) (string, bool, error) {
	n, ok, err := g.gh.FindIssue(ctx, g.repo, label)
	if err != nil || !ok {
		return "", false, integration.Refused(err)
	}
	return strconv.Itoa(n), true, nil
}

func (g *githubTracker) create(ctx context.Context, sig *events.Signal, d *rules.Decision, label, body string) (string, error) {
	labels := append([]string{label, "source:" + sig.Source, "severity:" + sig.Severity}, g.labels...)
	if d.Priority != "" {
		labels = append(labels, "priority:"+d.Priority)
	}
	n, err := g.gh.CreateIssue(ctx, g.repo, github.NewIssue{Title: ticketTitle(sig), Body: body, Labels: labels})
	if err != nil {
		return "", integration.Refused(err)
	}
	return strconv.Itoa(n), nil
}

func (g *githubTracker) comment(ctx context.Context, ref, text string) error {
	n, err := strconv.Atoi(ref)
	if err != nil {
		return err
	}
	_, err = g.gh.Comment(ctx, g.repo, n, text)
	return integration.Refused(err)
}

func (g *githubTracker) move(ctx context.Context, ref string, open bool) error {
	n, err := strconv.Atoi(ref)
	if err != nil {
		return err
	}
	return integration.Refused(g.gh.SetOpen(ctx, g.repo, n, open))
}

// ticketTitle is the ticket's one-line title: JIRA refuses a summary
// with a line break, and neither tracker shows controls. A character cut
// by the length limit is dropped whole.
func ticketTitle(sig *events.Signal) string {
	return strings.ToValidUTF8(sanitize.Truncate(sanitize.Line("["+sig.Source+"] "+sig.Title), 250), "")
}

func ticketBody(sig *events.Signal, d *rules.Decision) string {
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
	for _, k := range slices.Sorted(maps.Keys(d.Annotations)) {
		fmt.Fprintf(&b, "- %s: %s\n", k, d.Annotations[k])
	}
	if d.Flagged != "" {
		fmt.Fprintf(&b, "\n> Routed by the default: %s\n", d.Flagged)
	}
	return b.String()
}

// enrichment is the investigation comment: the source's links, the open
// incident of the same group, and previous occurrences.
func (t *Tracker) enrichment(ctx context.Context, sig *events.Signal, occ Occurrence, d *rules.Decision) string {
	var b strings.Builder
	b.WriteString("### Investigation\n\n**Source links**\n")
	if len(sig.Links) == 0 {
		b.WriteString("- none given\n")
	}
	for _, l := range sig.Links {
		fmt.Fprintf(&b, "- [%s](%s)\n", cmp.Or(l.Title, l.URL), l.URL)
	}
	b.WriteString("\n**Related open incidents**\n")
	if st, ok := t.related(ctx, d.GroupKey); ok {
		fmt.Fprintf(&b, "- %s %s (%s)\n", st.CaseNumber, st.DisplayTitle(), st.Status)
	} else {
		b.WriteString("- none for this group\n")
	}
	fmt.Fprintf(&b, "\n**Previous occurrences**\n- %d so far, first seen %s\n", occ.Count, occ.FirstSeen)
	return b.String()
}
