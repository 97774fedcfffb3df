package github

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
)

var nowFunc = time.Now

// Followup is an incident the CSIRT should chase.
type Followup struct {
	ID         string    `json:"id"`
	CaseNumber string    `json:"case_number"`
	Title      string    `json:"title"` // the codename for a confidential incident
	Severity   string    `json:"severity"`
	Status     string    `json:"status"`
	Since      time.Time `json:"since"` // declared (open) or closed
	Days       int       `json:"days"`
	// Reason is open_too_long, postmortem_missing or postmortem_unmerged.
	Reason      string `json:"reason"`
	Postmortem  string `json:"postmortem,omitempty"`
	Explanation string `json:"explanation"`
}

// Followups lists incidents open longer than OpenDays, and closed ones
// whose postmortem is missing or still unmerged PostmortemDays after close.
// Merge state is read from GitHub, where it is decided.
func (p *Projector) Followups(ctx context.Context, now time.Time) ([]Followup, error) {
	all, err := p.env.Incidents.List(ctx)
	if err != nil {
		return nil, err
	}
	out := []Followup{}
	for _, st := range all {
		f := Followup{ID: st.ID, CaseNumber: st.CaseNumber, Title: st.DisplayTitle(), Severity: string(st.Severity), Status: string(st.Status)}
		if st.ClosedAt == nil {
			f.Since, f.Days = st.DeclaredAt, days(now.Sub(st.DeclaredAt))
			if f.Days >= p.s.Followups.OpenDays {
				f.Reason, f.Explanation = "open_too_long", fmt.Sprintf("open for %d days (threshold %d)", f.Days, p.s.Followups.OpenDays)
				out = append(out, f)
			}
			continue
		}
		f.Since, f.Days = *st.ClosedAt, days(now.Sub(*st.ClosedAt))
		if f.Days < p.s.Followups.PostmortemDays || st.Drill {
			continue
		}
		if _, ok := p.repoFor(st); !ok {
			continue // confidential, postmortems skipped by configuration
		}
		link, ok := st.Links[Name]
		if !ok {
			f.Reason, f.Explanation = "postmortem_missing", fmt.Sprintf("closed %d days ago and no postmortem pull request", f.Days)
			out = append(out, f)
			continue
		}
		f.Postmortem = link.URL
		merged, err := p.merged(ctx, st, link)
		if err != nil {
			return nil, err
		}
		if !merged {
			f.Reason, f.Explanation = "postmortem_unmerged", fmt.Sprintf("closed %d days ago; postmortem %s not merged", f.Days, link.Name)
			out = append(out, f)
		}
	}
	return out, nil
}

func days(d time.Duration) int { return int(d / (24 * time.Hour)) }

func (p *Projector) merged(ctx context.Context, st incident.State, link incident.Link) (bool, error) {
	// The link names the repository the PR went to, whatever the
	// configuration says today.
	repo, _ := p.repoFor(st)
	if full, _, ok := strings.Cut(link.Name, "#"); ok {
		if r, err := parseRepo("link", full); err == nil {
			repo = r
		}
	}
	n, err := strconv.Atoi(link.Ref)
	if err != nil {
		return false, fmt.Errorf("postmortem link of %s: ref %q is not a number", st.CaseNumber, link.Ref)
	}
	pr, err := p.gh.GetPR(ctx, repo, n)
	return pr.Merged, integration.Refused(err)
}
