package ingest

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// pubsubPush is a Pub/Sub push delivery.
type pubsubPush struct {
	Message struct {
		Attributes  map[string]string `json:"attributes"`
		Data        string            `json:"data"`
		MessageID   string            `json:"messageId"`
		PublishTime time.Time         `json:"publishTime"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// sccNotification is Security Command Center's NotificationMessage.
type sccNotification struct {
	NotificationConfigName string `json:"notificationConfigName"`
	Finding                *struct {
		Name         string            `json:"name"`
		Parent       string            `json:"parent"`
		ResourceName string            `json:"resourceName"`
		State        string            `json:"state"`
		Category     string            `json:"category"`
		ExternalURI  string            `json:"externalUri"`
		Severity     string            `json:"severity"`
		FindingClass string            `json:"findingClass"`
		Description  string            `json:"description"`
		EventTime    time.Time         `json:"eventTime"`
		CreateTime   time.Time         `json:"createTime"`
		Mute         string            `json:"mute"`
		SecurityMark map[string]any    `json:"securityMarks"`
		Labels       map[string]string `json:"-"`
	} `json:"finding"`
	Resource struct {
		Name               string `json:"name"`
		Project            string `json:"project"`
		ProjectDisplayName string `json:"projectDisplayName"`
		DisplayName        string `json:"displayName"`
		Type               string `json:"type"`
	} `json:"resource"`
}

func parseSCC(b []byte) ([]events.Signal, error) {
	var p pubsubPush
	if err := decode(b, &p, false); err != nil {
		return nil, err
	}
	if p.Message.Data == "" {
		return nil, bad("message.data: is required")
	}
	data, err := base64.StdEncoding.DecodeString(p.Message.Data)
	if err != nil {
		return nil, bad("message.data: not base64")
	}
	var n sccNotification
	if err := decodeAt(data, &n, false, "message.data"); err != nil {
		return nil, err
	}
	f := n.Finding
	switch {
	case f == nil:
		return nil, bad("message.data.finding: is required")
	case f.Name == "":
		return nil, bad("message.data.finding.name: is required")
	case f.CreateTime.IsZero():
		return nil, bad("message.data.finding.createTime: is required")
	}
	status := events.SignalFiring
	if f.State == "INACTIVE" || f.Mute == "MUTED" {
		status = events.SignalResolved
	}
	project := n.Resource.ProjectDisplayName
	if project == "" {
		project = projectFrom(f.ResourceName)
	}
	return []events.Signal{{
		Source: "gcp-scc", Kind: "finding", Fingerprint: f.Name, Status: status,
		Title: first(f.Category, "SCC finding"), Summary: f.Description,
		Severity: severity(strings.ToLower(f.Severity)),
		Labels: map[string]string{"category": f.Category, "finding_class": f.FindingClass,
			"notification_config": n.NotificationConfigName, "resource_type": n.Resource.Type},
		Project: project, Resource: f.ResourceName,
		Links:    links("source", f.ExternalURI, "console", "https://console.cloud.google.com/security/command-center/findings?resourceId="+f.Name),
		StartsAt: f.CreateTime.UTC(),
		// SCC sets eventTime to the latest update of the finding.
		Revision: revision(f.EventTime, "state", f.State, "severity", f.Severity, "mute", f.Mute),
		GroupKey: "gcp-scc/" + project + "/" + f.Category,
	}}, nil
}

// projectFrom extracts the project id from //service.googleapis.com/projects/<id>/….
func projectFrom(resource string) string {
	_, rest, ok := strings.Cut(resource, "/projects/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}
