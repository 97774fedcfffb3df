package events

import (
	"fmt"
	"time"
)

// Escalation is what customer support sends to POST /api/v1/escalations;
// the Slack message shortcut builds one too and stores its Signal.
type Escalation struct {
	// ID is the support ticket or conversation id: with ReportedAt it makes
	// a retried delivery the same escalation.
	ID             string       `json:"id"`
	Title          string       `json:"title"`
	ReportedBy     string       `json:"reported_by"`
	ReportedAt     time.Time    `json:"reported_at"`
	CustomerImpact string       `json:"customer_impact"`
	Service        string       `json:"service"`
	Severity       string       `json:"severity"`
	Details        string       `json:"details"`
	Links          []SignalLink `json:"links"`
}

// Signal checks the escalation and normalises it; an error names the
// missing field.
func (e Escalation) Signal() (Signal, error) {
	for _, f := range []struct{ name, v string }{
		{"id", e.ID}, {"title", e.Title}, {"reported_by", e.ReportedBy}, {"customer_impact", e.CustomerImpact},
	} {
		if f.v == "" {
			return Signal{}, fmt.Errorf("%s: is required", f.name)
		}
	}
	if e.ReportedAt.IsZero() {
		return Signal{}, fmt.Errorf("reported_at: is required")
	}
	if e.Severity == "" {
		e.Severity = "high"
	}
	return Signal{
		Source: "escalation", Kind: "escalation", Fingerprint: e.ID, Status: SignalFiring,
		Title: e.Title, Summary: e.Details, Severity: e.Severity, Service: e.Service, Links: e.Links,
		StartsAt: e.ReportedAt.UTC(), GroupKey: "escalation/" + e.ID,
		ReportedBy: e.ReportedBy, CustomerImpact: e.CustomerImpact,
	}, nil
}
