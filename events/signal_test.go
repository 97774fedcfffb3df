package events_test

import (
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Expected values of the signal golden files.
func init() {
	const amGroup = `{}:{alertname="KafkaConsumerLag"}`
	goldens["io.hikeshi.signal.received.v1.json"] = golden{
		id: "d624c132-236b-808e-8c5c-9f11c6286bfa", subject: "d624c132-236b-808e-8c5c-9f11c6286bfa",
		time: "2025-06-03T02:14:10.027Z", actor: "aws",
		data: &events.Signal{
			Source: "aws", Kind: "finding",
			Fingerprint: "arn:aws:guardduty:us-east-1:111122223333:detector/3eb970f1ac9c4f5c9d4b5a1f3e3c5f20/finding/6abc9e2f1b7d4c0c8e5d2a1b3c4d5e6f",
			Status:      events.SignalFiring,
			Title:       "EC2 instance i-99999999 is querying a domain name associated with a known command and control server.",
			Severity:    "high",
			Labels:      map[string]string{"detail-type": "GuardDuty Finding", "finding_type": "Backdoor:EC2/C&CActivity.B!DNS"},
			Account:     "111122223333", Region: "us-east-1",
			Resource: "arn:aws:ec2:us-east-1:111122223333:instance/i-99999999",
			Links: []events.SignalLink{{Title: "GuardDuty console",
				URL: "https://console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?search=id%3D6abc9e2f1b7d4c0c8e5d2a1b3c4d5e6f"}},
			StartsAt: mustTime("2025-06-03T02:14:09.511Z"),
			GroupKey: "aws/111122223333/Backdoor:EC2/C&CActivity.B!DNS",
		},
	}
	// An update of the first finding: its revision makes it a new signal.
	goldens["io.hikeshi.signal.received.v1.updated.json"] = golden{
		id: "234b4a52-b385-8021-abcf-1cf43163dc0f", subject: "234b4a52-b385-8021-abcf-1cf43163dc0f",
		time: "2025-06-03T08:14:12.730Z", actor: "aws",
		data: &events.Signal{
			Source: "aws", Kind: "finding",
			Fingerprint: "arn:aws:guardduty:us-east-1:111122223333:detector/3eb970f1ac9c4f5c9d4b5a1f3e3c5f20/finding/6abc9e2f1b7d4c0c8e5d2a1b3c4d5e6f",
			Status:      events.SignalFiring,
			Title:       "EC2 instance i-99999999 is querying a domain name associated with a known command and control server.",
			Summary: "EC2 instance i-99999999 is querying a domain name associated with a known command and control server.\n" +
				"Action: DNS_REQUEST\nDomain: c2.example.net\nResource role: ACTOR\nCount: 4",
			Severity: "high",
			Labels: map[string]string{"action_type": "DNS_REQUEST", "count": "4", "detail-type": "GuardDuty Finding", "domain": "c2.example.net",
				"finding_type": "Backdoor:EC2/C&CActivity.B!DNS", "resource_role": "ACTOR", "severity_score": "8"},
			Account: "111122223333", Region: "us-east-1",
			Resource: "arn:aws:ec2:us-east-1:111122223333:instance/i-99999999",
			Links: []events.SignalLink{{Title: "GuardDuty console",
				URL: "https://console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?search=id%3D6abc9e2f1b7d4c0c8e5d2a1b3c4d5e6f"}},
			StartsAt: mustTime("2025-06-03T02:14:09.511Z"),
			Revision: "2025-06-03T08:14:11.207Z count=4 severity=8",
			GroupKey: "aws/111122223333/Backdoor:EC2/C&CActivity.B!DNS",
		},
	}
	goldens["io.hikeshi.signal.received.v1.resolved.json"] = golden{
		id: "cbd9cf10-1f06-8d08-b8c5-1efe6572f506", subject: "cbd9cf10-1f06-8d08-b8c5-1efe6572f506",
		time: "2025-06-04T11:20:31.402Z", actor: "alertmanager",
		data: &events.Signal{
			Source: "alertmanager", Kind: "alert", Fingerprint: "c4b8a6e3d2f19a07", Status: events.SignalResolved,
			Title: "KafkaConsumerLag", Summary: "Consumer group checkout-events is 120000 messages behind.",
			Severity: "medium",
			Labels:   map[string]string{"alertname": "KafkaConsumerLag", "consumergroup": "checkout-events", "project": "acme-prod-data"},
			Project:  "acme-prod-data", Service: "checkout",
			Links:    []events.SignalLink{{Title: "generator", URL: "http://prometheus.acme.internal:9090/graph?g0.expr=kafka_consumergroup_lag"}},
			StartsAt: mustTime("2025-06-04T11:02:30Z"), EndsAt: mustTime("2025-06-04T11:20:00Z"),
			GroupKey: amGroup,
		},
	}
	goldens["io.hikeshi.signal.received.v1.escalation.json"] = golden{
		id: "7995b20d-f798-840d-b245-1f84a5ed2cb1", subject: "7995b20d-f798-840d-b245-1f84a5ed2cb1",
		time: "2025-06-05T07:48:12.311Z", actor: "escalation",
		data: &events.Signal{
			Source: "escalation", Kind: "escalation", Fingerprint: "ZD-88213", Status: events.SignalFiring,
			Title: "Customers report being charged twice for one order", Severity: "high", Service: "payments",
			StartsAt: mustTime("2025-06-05T07:48:12.093Z"), GroupKey: "escalation/ZD-88213",
			ReportedBy: "yuki.tanaka", CustomerImpact: "Three enterprise tenants since 07:30 JST; refunds requested.",
		},
	}
	goldens["io.hikeshi.signal.occurrences_counted.v1.json"] = golden{
		id: "5b0e3c1a-8f7d-8e2b-9c4a-1d2e3f4a5b6c", subject: "3872f317-a023-8d16-bde2-ca4999b1cbf0",
		time: "2025-06-04T11:09:44.871Z", actor: "signals", causation: "cbd9cf10-1f06-8d08-b8c5-1efe6572f506",
		data: &events.SignalOccurrences{
			GroupKey: amGroup, Occurrences: 100, Firing: 37, Fingerprint: "c4b8a6e3d2f19a07",
			Status: events.SignalFiring, Title: "KafkaConsumerLag", Reason: "count",
		},
	}
	goldens["io.hikeshi.signal.occurrences_counted.v1.changes.json"] = golden{
		id: "6c1f4d2b-9a8e-8f3c-8d5b-2e3f4a5b6c7d", subject: "3872f317-a023-8d16-bde2-ca4999b1cbf0",
		time: "2025-06-04T11:14:02.118Z", actor: "signals", causation: "cbd9cf10-1f06-8d08-b8c5-1efe6572f506",
		data: &events.SignalOccurrences{
			GroupKey: amGroup, Occurrences: 104, Firing: 36, Fingerprint: "c4b8a6e3d2f19a07",
			Status: events.SignalResolved, Title: "KafkaConsumerLag", Reason: "status",
			Changes: []events.SignalChange{
				{Fingerprint: "9f2e71c0a4b3d815", Change: events.ChangeJoined, Status: events.SignalFiring, Title: "KafkaConsumerLag"},
				{Fingerprint: "c4b8a6e3d2f19a07", Change: events.ChangeResolved, Status: events.SignalResolved, Title: "KafkaConsumerLag"},
				{Fingerprint: "1d7a5e3b9c0f2468", Change: events.ChangeFiringAgain, Status: events.SignalFiring, Title: "KafkaConsumerLag"},
				{Fingerprint: "5b3c8e1f7a2d4096", Change: events.ChangeResolved, Status: events.SignalResolved, Title: "KafkaConsumerLag"},
			},
		},
	}
}

// The golden signals' ids are their dedup keys: a producer can recompute
// them, and they never change for a published signal.
func TestSignalKeyIsStable(t *testing.T) {
	for _, c := range []struct{ source, fp, status, start, want string }{
		{"aws", "arn:aws:guardduty:us-east-1:111122223333:detector/3eb970f1ac9c4f5c9d4b5a1f3e3c5f20/finding/6abc9e2f1b7d4c0c8e5d2a1b3c4d5e6f",
			"firing", "2025-06-03T02:14:09.511Z", "d624c132-236b-808e-8c5c-9f11c6286bfa"},
		{"alertmanager", "c4b8a6e3d2f19a07", "resolved", "2025-06-04T11:02:30Z", "cbd9cf10-1f06-8d08-b8c5-1efe6572f506"},
		// The same instant in another zone is the same signal.
		{"alertmanager", "c4b8a6e3d2f19a07", "resolved", "2025-06-04T20:02:30+09:00", "cbd9cf10-1f06-8d08-b8c5-1efe6572f506"},
	} {
		if got := events.SignalKey(c.source, c.fp, c.status, mustTime(c.start)); got != c.want {
			t.Errorf("SignalKey(%s, %s, %s, %s) = %s, want %s", c.source, c.fp, c.status, c.start, got, c.want)
		}
	}
	if a, b := events.SignalKey("x", "f", "firing", time.Unix(0, 0)), events.SignalKey("x", "f", "resolved", time.Unix(0, 0)); a == b {
		t.Error("firing and resolved share a key")
	}
	// Without a revision Key is SignalKey; a revision makes another key.
	s := events.Signal{Source: "alertmanager", Fingerprint: "c4b8a6e3d2f19a07", Status: "resolved", StartsAt: mustTime("2025-06-04T11:02:30Z")}
	if got := s.Key(); got != "cbd9cf10-1f06-8d08-b8c5-1efe6572f506" {
		t.Errorf("Key without a revision = %s", got)
	}
	if s.Revision = "2025-06-04T11:30:00Z count=2"; s.Key() == "cbd9cf10-1f06-8d08-b8c5-1efe6572f506" {
		t.Error("a revision does not change the key")
	}
	upd := goldens["io.hikeshi.signal.received.v1.updated.json"]
	if got := upd.data.(*events.Signal).Key(); got != upd.id {
		t.Errorf("updated finding's key = %s, want its golden id %s", got, upd.id)
	}
	if src, ok := events.SignalSourceFromSubject(events.SignalSubject("gcp-scc", "k")); !ok || src != "gcp-scc" {
		t.Errorf("source from subject = %q, %v", src, ok)
	}
}
