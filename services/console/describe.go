package console

import (
	"encoding/json"
	"strings"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/readmodel"
)

// describe says what one event means, in a line and an optional text.
func describe(e readmodel.Entry) entry {
	out := entry{Entry: e, Kind: kindOf(e.Type)}
	var err error
	switch e.Type {
	case events.TypeDeclared:
		var d events.Declared
		if err = json.Unmarshal(e.Data, &d); err == nil {
			out.Title = "Declared " + string(d.Severity) + " on " + d.Service + ": " + d.Title
			if d.Drill {
				out.Title += " (drill)"
			}
			out.Text = d.Summary
		}
	case events.TypeSeverityChanged:
		var d events.SeverityChanged
		if err = json.Unmarshal(e.Data, &d); err == nil {
			out.Title, out.Text = "Severity "+string(d.From)+" → "+string(d.To), d.Reason
		}
	case events.TypeStatusUpdated:
		var d events.StatusUpdated
		if err = json.Unmarshal(e.Data, &d); err == nil {
			out.Title, out.Text = "Status "+string(d.From)+" → "+string(d.To), d.Message
		}
	case events.TypeCommanderAssigned:
		var d events.CommanderAssigned
		if err = json.Unmarshal(e.Data, &d); err == nil {
			out.Title = "Commander: " + d.User
			if d.Previous != "" {
				out.Title += " (was " + d.Previous + ")"
			}
		}
	case events.TypeNoteAdded:
		var d events.NoteAdded
		if err = json.Unmarshal(e.Data, &d); err == nil {
			out.Title, out.Text = "Note", d.Text
		}
	case events.TypeClosed:
		var d events.IncidentClosed
		if err = json.Unmarshal(e.Data, &d); err == nil {
			out.Title, out.Text = "Closed: "+d.Resolution, d.LessonsLearned
		}
	case events.TypeEvidenceAdded:
		var d events.EvidenceAdded
		if err = json.Unmarshal(e.Data, &d); err == nil {
			out.Title = "Evidence " + d.EvidenceID + " added: " + d.Name + ", held by " + d.Custodian
			out.Text = "SHA-256 " + d.SHA256 + ", stored at " + d.Location + ". " + d.Description
		}
	case events.TypeEvidenceHandedOver:
		var d events.EvidenceHandedOver
		if err = json.Unmarshal(e.Data, &d); err == nil {
			out.Title, out.Text = "Evidence "+d.EvidenceID+" handed over: "+d.From+" → "+d.To, d.Reason
		}
	case events.TypeMilestoneRecorded:
		var d events.MilestoneRecorded
		if err = json.Unmarshal(e.Data, &d); err == nil {
			out.Title = "Milestone " + strings.ReplaceAll(d.Name, "_", " ")
			if d.Corrects != "" {
				out.Title += " (corrected)"
			}
			out.Text = d.Reason
		}
	case events.TypeTriageAccepted:
		var d events.TriageAccepted
		if err = json.Unmarshal(e.Data, &d); err == nil {
			out.Title = "Declared from an escalation in the triage queue, accepted by " + d.AcceptedBy
		}
	default:
		var d events.Linked
		if json.Unmarshal(e.Data, &d) == nil && d.System != "" && d.Ref != "" {
			name := d.Name
			if name == "" {
				name = d.Ref
			}
			out.Title, out.URL = "Linked in "+d.System+": "+name, d.URL
			break
		}
		out.Title = strings.ReplaceAll(out.Kind, "_", " ")
	}
	if err != nil {
		out.Title = strings.ReplaceAll(out.Kind, "_", " ") + " (data not readable)"
	}
	return out
}
