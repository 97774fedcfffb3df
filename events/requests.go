package events

// Requests one module makes of another. A module never calls another
// module's code: it appends a small fact, and the module that owns the
// remote acts on it once (through its effects ledger).
const (
	// TypeGitHubPostmortemRequested asks the GitHub module for the
	// incident's postmortem pull request now, before (or without) close.
	TypeGitHubPostmortemRequested = "io.hikeshi.github.postmortem_requested"
	// TypeSlackAnnouncementRequested asks the Slack module to post a
	// message to a channel, once.
	TypeSlackAnnouncementRequested = "io.hikeshi.slack.announcement_requested"
)

// Announcements that concern no incident (the weekly follow-up digest) go
// on their own stream, one subject per announcement: SLACK_OUTBOX,
// slack.outbox.<event id>.
const (
	SlackOutboxStream = "SLACK_OUTBOX"
	SlackOutboxPrefix = "slack.outbox"
)

// PostmortemRequested is someone asking for the postmortem on demand.
type PostmortemRequested struct {
	RequestedBy string `json:"requested_by"`
	// Via is where the request came from: slack.
	Via string `json:"via"`
}

// AnnouncementRequested is a message for a Slack channel. Whoever appends
// it has already applied its audience rules: for a confidential incident
// the text names only the codename.
type AnnouncementRequested struct {
	// Channel is a Slack channel id (C…) or name.
	Channel string `json:"channel"`
	Text    string `json:"text"`
	// Who asked, and why: the notify rule and recipient name and the
	// incident event the announcement is about, or the digest's name.
	Rule      string `json:"rule,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	Trigger   string `json:"trigger,omitempty"`
	CauseID   string `json:"cause_id,omitempty"`
}

func (PostmortemRequested) EventType() string   { return TypeGitHubPostmortemRequested }
func (AnnouncementRequested) EventType() string { return TypeSlackAnnouncementRequested }

func init() {
	Register(Spec{Type: TypeGitHubPostmortemRequested, Name: "github_postmortem_requested", Version: 1,
		Doc: "Someone asked for the postmortem pull request now (from Slack); the GitHub module opens or finds it.",
		New: func() Data { return &PostmortemRequested{} }})
	Register(Spec{Type: TypeSlackAnnouncementRequested, Name: "slack_announcement_requested", Version: 1,
		Doc: "A message for a Slack channel (a notify rule's announcement, the follow-up digest); the Slack module posts it once.",
		New: func() Data { return &AnnouncementRequested{} }})
}
