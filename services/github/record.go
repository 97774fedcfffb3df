package github

import (
	"context"
	"fmt"

	githubclient "github.com/hikeshi/hikeshi/adapters/github"
	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/sanitize"
)

// The recording issue: one GitHub issue per incident, a comment per event,
// closed when the incident closes. Each step is found by a marker before it
// is done, so a redelivery repeats nothing.

// recordLabel finds an incident's recording issue.
func recordLabel(id string) string { return "hikeshi-" + id }

func (p *Projector) record(ctx context.Context, e events.Stored) error {
	data, err := e.Decode()
	if err != nil {
		return err
	}
	st, err := p.stateAt(ctx, e)
	if err != nil {
		return err
	}
	repo, ok := p.repoFor(st)
	if !ok {
		return nil
	}
	number, err := natsjs.Once(ctx, p.env.Effects, natsjs.EffectKey(Name, st.ID, "record"), func(ctx context.Context) (int, error) {
		// Searched by label before every create: an answer lost after
		// GitHub created the issue makes no second one.
		n, _, err := integration.Finder[int]{
			Effects: p.env.Effects, Key: natsjs.EffectKey(Name, st.ID, "record-create"),
			Find:   func(ctx context.Context) (int, bool, error) { return p.findRecordIssue(ctx, repo, st) },
			Create: func(ctx context.Context) (int, error) { return p.recordIssue(ctx, repo, st) },
		}.FindOrCreate(ctx)
		return n, err
	})
	if err != nil {
		return err
	}
	if _, ok := data.(*events.Declared); ok {
		return nil // the issue's body says it
	}
	text := describe(st, data)
	if text == "" {
		return nil
	}
	if _, err := natsjs.Once(ctx, p.env.Effects, natsjs.EffectKey(Name, st.ID, "record", e.ID), func(ctx context.Context) (int64, error) {
		return p.recordComment(ctx, repo, number, e, text)
	}); err != nil {
		return err
	}
	if e.Type != events.TypeClosed {
		return nil
	}
	return integration.Refused(p.gh.SetOpen(ctx, repo, number, false))
}

// stateAt is the incident as it stood right after e: the issue a replay
// creates long after says what the live one said (the severity declared,
// not the one reached since).
func (p *Projector) stateAt(ctx context.Context, e events.Stored) (incident.State, error) {
	var st incident.State
	stored, err := p.env.Events.Load(ctx, e.Envelope.Subject, 0)
	if err != nil {
		return st, err
	}
	for _, s := range stored {
		if err := st.Apply(s.Envelope, s.Seq); err != nil {
			return st, err
		}
		if s.ID == e.ID {
			return st, nil
		}
	}
	return st, fmt.Errorf("github: event %s not found on incident %s", e.ID, e.Envelope.Subject)
}

func (p *Projector) findRecordIssue(ctx context.Context, repo repoName, st incident.State) (int, bool, error) {
	n, ok, err := p.gh.FindIssue(ctx, repo, recordLabel(st.ID))
	return n, ok, integration.Refused(err)
}

func (p *Projector) recordIssue(ctx context.Context, repo repoName, st incident.State) (int, error) {
	label := recordLabel(st.ID)
	body := fmt.Sprintf("Timeline of %s, recorded by Hikeshi as it happens.\n\n- Severity: %s\n- Service: %s\n- Declared by: %s\n- Timeline: %s\n",
		st.CaseNumber, st.Severity, integration.Service(st), st.DeclaredBy, integration.TimelineURL(p.env.PublicURL, st.ID))
	n, err := p.gh.CreateIssue(ctx, repo, githubclient.NewIssue{
		Title:  sanitize.Line(fmt.Sprintf("%s[%s] %s: %s", integration.Marker(st), st.Severity, st.CaseNumber, st.DisplayTitle())),
		Body:   body,
		Labels: []string{"incident", label},
	})
	return n, integration.Refused(err)
}

func (p *Projector) recordComment(ctx context.Context, repo repoName, number int, e events.Stored, text string) (int64, error) {
	mark := "<!-- hikeshi event " + e.ID + " -->"
	if id, ok, err := p.gh.FindComment(ctx, repo, number, mark); err != nil || ok {
		return id, integration.Refused(err)
	}
	body := fmt.Sprintf("**%s** %s: %s\n%s", e.Time.UTC().Format("15:04:05 UTC"), e.Actor, sanitize.Text(text), mark)
	id, err := p.gh.Comment(ctx, repo, number, body)
	return id, integration.Refused(err)
}
