// Package integration holds what the outbound integrations (JIRA, GitHub,
// notifications) share: an HTTP client that obeys the remote's rate limits
// and carries credentials, the rule for which remote answers are final, and
// what may be told about a confidential incident.
package integration

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hikeshi/hikeshi/adapters/httpx"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/projection"
)

// Client is httpx.Client: authorization on every request, retries
// through the transport.
var Client = httpx.Client

// Refused marks err as projection.ErrPermanent when it says the remote
// refused for good: an adapter's error with Permanent() true (a JIRA or
// GitHub refusal that no retry can change, see httpx.Permanent; a
// workflow without the configured transition). The event is then
// dead-lettered and the projector moves on; rate limits, server errors and
// credentials an operator can fix are retried.
func Refused(err error) error {
	var p interface{ Permanent() bool }
	if errors.As(err, &p) && p.Permanent() && !errors.Is(err, projection.ErrPermanent) {
		return fmt.Errorf("%w: %w", projection.ErrPermanent, err)
	}
	return err
}

// Withheld replaces free text written about a confidential incident: notes,
// status messages and resolutions may name what the codename hides, so
// they stay in the private channel.
const Withheld = "(kept in the private incident channel)"

// Text is what may be said outside the private channel about st: the text
// itself, or Withheld for a confidential incident.
func Text(st incident.State, text string) string {
	if st.Confidential && strings.TrimSpace(text) != "" {
		return Withheld
	}
	return text
}

// Service is the affected service as it may be shown outside.
func Service(st incident.State) string {
	if st.Confidential {
		return "(confidential)"
	}
	return st.Service
}

// TimelineURL links to the incident's page in the hub's web console: its
// header and live timeline.
func TimelineURL(publicURL, id string) string {
	return strings.TrimRight(publicURL, "/") + "/incidents/" + id
}

// Marker is the prefix of a title outside the hub: [DRILL] for drills.
func Marker(st incident.State) string {
	if st.Drill {
		return "[DRILL] "
	}
	return ""
}
