package signals

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// ebEvent is an EventBridge event, as an API destination posts it and as
// an SNS notification carries it in Message.
type ebEvent struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       time.Time       `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// guardDuty is the part of a GuardDuty finding a signal needs.
type guardDuty struct {
	AccountID string    `json:"accountId"`
	Region    string    `json:"region"`
	ID        string    `json:"id"`
	Arn       string    `json:"arn"`
	Type      string    `json:"type"`
	Severity  float64   `json:"severity"`
	CreatedAt time.Time `json:"createdAt"`
	Title     string    `json:"title"`
	Desc      string    `json:"description"`
	Resource  struct {
		ResourceType    string `json:"resourceType"`
		InstanceDetails *struct {
			InstanceID string `json:"instanceId"`
		} `json:"instanceDetails"`
		AccessKeyDetails *struct {
			UserName string `json:"userName"`
		} `json:"accessKeyDetails"`
	} `json:"resource"`
	Service struct {
		Archived bool `json:"archived"`
		Count    int  `json:"count"`
	} `json:"service"`
}

// asff is the part of a Security Hub (ASFF) finding a signal needs.
type asff struct {
	ID           string    `json:"Id"`
	AwsAccountID string    `json:"AwsAccountId"`
	Region       string    `json:"Region"`
	Title        string    `json:"Title"`
	Description  string    `json:"Description"`
	CreatedAt    time.Time `json:"CreatedAt"`
	RecordState  string    `json:"RecordState"`
	ProductName  string    `json:"ProductName"`
	Severity     struct {
		Label string `json:"Label"`
	} `json:"Severity"`
	Workflow struct {
		Status string `json:"Status"`
	} `json:"Workflow"`
	Compliance struct {
		Status string `json:"Status"`
	} `json:"Compliance"`
	Resources []struct {
		Type string `json:"Type"`
		ID   string `json:"Id"`
	} `json:"Resources"`
	SourceURL string `json:"SourceUrl"`
	Types     []string
}

// parseEventBridge normalises an EventBridge event: GuardDuty findings,
// Security Hub imported findings (one signal per finding), and any other
// event as a generic finding keyed by its event id.
func parseEventBridge(b []byte) ([]events.Signal, error) {
	var e ebEvent
	if err := decode(b, &e, false); err != nil {
		return nil, err
	}
	switch {
	case e.ID == "":
		return nil, bad("id: is required")
	case e.DetailType == "":
		return nil, bad("detail-type: is required")
	case len(e.Detail) == 0 || string(e.Detail) == "null":
		return nil, bad("detail: is required")
	}
	base := events.Signal{
		Source: "aws", Kind: "finding", Status: events.SignalFiring,
		Account: e.Account, Region: e.Region,
		Labels: map[string]string{"detail-type": e.DetailType, "event_source": e.Source},
	}
	switch e.DetailType {
	case "GuardDuty Finding":
		var g guardDuty
		if err := json.Unmarshal(e.Detail, &g); err != nil {
			return nil, bad("detail: %s", jsonError(err))
		}
		if g.Arn == "" && g.ID == "" {
			return nil, bad("detail.arn: is required")
		}
		if g.CreatedAt.IsZero() {
			return nil, bad("detail.createdAt: is required")
		}
		s := base
		s.Fingerprint = first(g.Arn, g.ID)
		s.Title = first(g.Title, g.Type)
		s.Summary = g.Desc
		s.Severity = guardDutySeverity(g.Severity)
		s.Labels["finding_type"] = g.Type
		s.Account, s.Region = first(g.AccountID, e.Account), first(g.Region, e.Region)
		s.Resource = first(resourceARN(e.Resources), g.Resource.ResourceType)
		if g.Resource.InstanceDetails != nil && g.Resource.InstanceDetails.InstanceID != "" {
			s.Resource = fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", s.Region, s.Account, g.Resource.InstanceDetails.InstanceID)
		}
		if g.Service.Archived {
			s.Status = events.SignalResolved
		}
		// The finding's creation, not the event time: GuardDuty re-sends a
		// finding as its count grows, and that is the same signal.
		s.StartsAt = g.CreatedAt.UTC()
		s.GroupKey = "aws/" + s.Account + "/" + g.Type
		s.Links = links("GuardDuty console", fmt.Sprintf("https://console.aws.amazon.com/guardduty/home?region=%s#/findings?search=id%%3D%s", s.Region, g.ID))
		return []events.Signal{s}, nil
	case "Security Hub Findings - Imported":
		var d struct {
			Findings []asff `json:"findings"`
		}
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			return nil, bad("detail: %s", jsonError(err))
		}
		if len(d.Findings) == 0 {
			return nil, bad("detail.findings: empty")
		}
		out := make([]events.Signal, 0, len(d.Findings))
		for i, f := range d.Findings {
			if f.ID == "" {
				return nil, bad("detail.findings[%d].Id: is required", i)
			}
			if f.CreatedAt.IsZero() {
				return nil, bad("detail.findings[%d].CreatedAt: is required", i)
			}
			s := base
			s.Labels = map[string]string{"detail-type": e.DetailType, "event_source": e.Source, "product": f.ProductName}
			if len(f.Types) > 0 {
				s.Labels["finding_type"] = f.Types[0]
			}
			s.Fingerprint, s.Title, s.Summary = f.ID, f.Title, f.Description
			s.Severity = severity(strings.ToLower(f.Severity.Label))
			s.Account, s.Region = first(f.AwsAccountID, e.Account), first(f.Region, e.Region)
			if len(f.Resources) > 0 {
				s.Resource = f.Resources[0].ID
			}
			if f.RecordState == "ARCHIVED" || f.Workflow.Status == "RESOLVED" || f.Workflow.Status == "SUPPRESSED" || f.Compliance.Status == "PASSED" {
				s.Status = events.SignalResolved
			}
			s.StartsAt = f.CreatedAt.UTC()
			s.GroupKey = "aws/" + s.Account + "/" + first(f.ProductName, "securityhub") + "/" + f.Title
			s.Links = links("source", f.SourceURL)
			out = append(out, s)
		}
		return out, nil
	}
	if e.Time.IsZero() {
		return nil, bad("time: is required")
	}
	s := base
	s.Fingerprint, s.Title, s.Severity = e.ID, e.DetailType, "info"
	s.Resource = resourceARN(e.Resources)
	s.StartsAt = e.Time.UTC()
	s.GroupKey = "aws/" + e.Account + "/" + e.DetailType
	return []events.Signal{s}, nil
}

func resourceARN(rs []string) string {
	if len(rs) > 0 {
		return rs[0]
	}
	return ""
}

// guardDutySeverity follows GuardDuty's bands: 9-10 critical, 7-8.9 high,
// 4-6.9 medium, 1-3.9 low.
func guardDutySeverity(v float64) string {
	switch {
	case v >= 9:
		return "critical"
	case v >= 7:
		return "high"
	case v >= 4:
		return "medium"
	case v >= 1:
		return "low"
	}
	return "info"
}
