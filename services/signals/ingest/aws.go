package ingest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
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
	UpdatedAt time.Time `json:"updatedAt"`
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
	Service gdService `json:"service"`
}

// gdService is what GuardDuty observed: the action, the resource's role
// in it, how often and when, and the threat intelligence behind it.
type gdService struct {
	Archived       bool   `json:"archived"`
	Count          int    `json:"count"`
	DetectorID     string `json:"detectorId"`
	ResourceRole   string `json:"resourceRole"`
	EventFirstSeen string `json:"eventFirstSeen"`
	EventLastSeen  string `json:"eventLastSeen"`
	// AdditionalInfo holds the sample flag, as {"sample": true} or, in
	// newer findings, inside {"value": "{\"sample\":true}", "type": "default"}.
	AdditionalInfo json.RawMessage `json:"additionalInfo"`
	Action         struct {
		ActionType              string `json:"actionType"`
		NetworkConnectionAction *struct {
			ConnectionDirection string     `json:"connectionDirection"`
			RemoteIPDetails     gdRemoteIP `json:"remoteIpDetails"`
		} `json:"networkConnectionAction"`
		AwsAPICallAction *struct {
			API             string     `json:"api"`
			ServiceName     string     `json:"serviceName"`
			RemoteIPDetails gdRemoteIP `json:"remoteIpDetails"`
		} `json:"awsApiCallAction"`
		DNSRequestAction *struct {
			Domain string `json:"domain"`
		} `json:"dnsRequestAction"`
		PortProbeAction *struct {
			PortProbeDetails []struct {
				RemoteIPDetails gdRemoteIP `json:"remoteIpDetails"`
			} `json:"portProbeDetails"`
		} `json:"portProbeAction"`
	} `json:"action"`
	Evidence *struct {
		ThreatIntelligenceDetails []struct {
			ThreatListName string   `json:"threatListName"`
			ThreatNames    []string `json:"threatNames"`
		} `json:"threatIntelligenceDetails"`
	} `json:"evidence"`
}

type gdRemoteIP struct {
	IPAddressV4  string `json:"ipAddressV4"`
	Organization struct {
		Org string `json:"org"`
	} `json:"organization"`
	Country struct {
		CountryName string `json:"countryName"`
	} `json:"country"`
}

// asff is the part of a Security Hub (ASFF) finding a signal needs.
type asff struct {
	ID           string    `json:"Id"`
	AwsAccountID string    `json:"AwsAccountId"`
	Region       string    `json:"Region"`
	Title        string    `json:"Title"`
	Description  string    `json:"Description"`
	CreatedAt    time.Time `json:"CreatedAt"`
	UpdatedAt    time.Time `json:"UpdatedAt"`
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
		if err := decodeAt(e.Detail, &g, false, "detail"); err != nil {
			return nil, err
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
		s.Severity = guardDutySeverity(g.Severity)
		s.Labels["finding_type"] = g.Type
		s.Summary = g.Service.describe(s.Labels, g.Desc)
		s.Labels["resource_type"] = g.Resource.ResourceType
		s.Labels["severity_score"] = strconv.FormatFloat(g.Severity, 'g', -1, 64)
		s.Account, s.Region = first(g.AccountID, e.Account), first(g.Region, e.Region)
		s.Resource = first(resourceARN(e.Resources), g.Resource.ResourceType)
		if g.Resource.InstanceDetails != nil && g.Resource.InstanceDetails.InstanceID != "" {
			s.Resource = fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", s.Region, s.Account, g.Resource.InstanceDetails.InstanceID)
		}
		if g.Service.Archived {
			s.Status = events.SignalResolved
		}
		// The finding's creation, not the event time, starts the episode;
		// GuardDuty re-sends a finding as its count or severity grows, and
		// each update (its revision) is a new signal of that episode.
		s.StartsAt = g.CreatedAt.UTC()
		s.Revision = revision(g.UpdatedAt, "count", strconv.Itoa(g.Service.Count), "severity", s.Labels["severity_score"])
		s.GroupKey = "aws/" + s.Account + "/" + g.Type
		s.Links = links("GuardDuty console", fmt.Sprintf("https://console.aws.amazon.com/guardduty/home?region=%s#/findings?search=id%%3D%s", s.Region, g.ID))
		return []events.Signal{s}, nil
	case "Security Hub Findings - Imported":
		var d struct {
			Findings []asff `json:"findings"`
		}
		if err := decodeAt(e.Detail, &d, false, "detail"); err != nil {
			return nil, err
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
			s.Revision = revision(f.UpdatedAt, "severity", f.Severity.Label)
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

// describe adds what GuardDuty observed to labels (never to the group
// key: an attacker's IP or an instance would split one finding type into
// as many incidents) and to the summary.
func (sv *gdService) describe(labels map[string]string, desc string) string {
	set := func(k, v string) {
		if v != "" {
			labels[k] = v
		}
	}
	set("action_type", sv.Action.ActionType)
	set("resource_role", sv.ResourceRole)
	set("count", strconv.Itoa(sv.Count))
	set("event_first_seen", sv.EventFirstSeen)
	set("event_last_seen", sv.EventLastSeen)
	set("detector_id", sv.DetectorID)
	var remote *gdRemoteIP
	switch a := &sv.Action; {
	case a.NetworkConnectionAction != nil:
		remote = &a.NetworkConnectionAction.RemoteIPDetails
		set("connection_direction", a.NetworkConnectionAction.ConnectionDirection)
	case a.AwsAPICallAction != nil:
		remote = &a.AwsAPICallAction.RemoteIPDetails
		set("api", a.AwsAPICallAction.API)
		set("api_service", a.AwsAPICallAction.ServiceName)
	case a.DNSRequestAction != nil:
		set("domain", a.DNSRequestAction.Domain)
	case a.PortProbeAction != nil && len(a.PortProbeAction.PortProbeDetails) > 0:
		remote = &a.PortProbeAction.PortProbeDetails[0].RemoteIPDetails
	}
	if remote != nil {
		set("remote_ip", remote.IPAddressV4)
		set("remote_org", remote.Organization.Org)
		set("remote_country", remote.Country.CountryName)
	}
	if sv.Evidence != nil {
		var lists, names []string
		for _, t := range sv.Evidence.ThreatIntelligenceDetails {
			lists = appendNew(lists, t.ThreatListName)
			for _, n := range t.ThreatNames {
				names = appendNew(names, n)
			}
		}
		set("threat_lists", strings.Join(lists, ","))
		set("threat_names", strings.Join(names, ","))
	}
	if guardDutySample(sv.AdditionalInfo) {
		labels["sample"] = "true"
	}
	var b strings.Builder
	b.WriteString(desc)
	if labels["sample"] == "true" {
		b.WriteString("\nSample finding (generated by GuardDuty, not an observed threat).")
	}
	for _, l := range []struct{ name, key string }{
		{"Action", "action_type"}, {"Direction", "connection_direction"}, {"API", "api"}, {"Domain", "domain"},
		{"Remote IP", "remote_ip"}, {"Remote organisation", "remote_org"}, {"Remote country", "remote_country"},
		{"Resource role", "resource_role"}, {"Count", "count"}, {"First seen", "event_first_seen"},
		{"Last seen", "event_last_seen"}, {"Threat lists", "threat_lists"}, {"Threat names", "threat_names"},
	} {
		if v := labels[l.key]; v != "" {
			fmt.Fprintf(&b, "\n%s: %s", l.name, v)
		}
	}
	return strings.TrimPrefix(b.String(), "\n")
}

// guardDutySample reports GuardDuty's sample-finding flag, in either
// shape of additionalInfo; anything else there is not a sample.
func guardDutySample(raw json.RawMessage) bool {
	var info struct {
		Sample any    `json:"sample"`
		Value  string `json:"value"`
	}
	if json.Unmarshal(raw, &info) != nil {
		return false
	}
	if info.Sample == true || info.Sample == "true" {
		return true
	}
	return info.Value != "" && guardDutySample(json.RawMessage(info.Value))
}

func appendNew(vs []string, v string) []string {
	if v == "" || slices.Contains(vs, v) {
		return vs
	}
	return append(vs, v)
}

// revision names one update of a finding: its update time and what a
// reader compares (count, severity). Without an update time there is no
// revision, and re-sent copies stay one signal.
func revision(updated time.Time, kv ...string) string {
	if updated.IsZero() {
		return ""
	}
	r := updated.UTC().Format(time.RFC3339Nano)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			r += " " + kv[i] + "=" + kv[i+1]
		}
	}
	return r
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
