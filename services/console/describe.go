package console

import (
	"encoding/json"
	"strings"

	"github.com/hikeshi/hikeshi/adapters/sqlite"
	"github.com/hikeshi/hikeshi/events"
)

// describe says what one event means, in a line and an optional text.
func describe(e sqlite.Entry) entry {
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
