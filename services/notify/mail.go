package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// mailer sends one message per connection: notifications are few, and a
// fresh connection keeps a failed send from poisoning the next.
type mailer struct {
	cfg      SMTP
	password string
	from     *mail.Address
	// tlsConfig is nil outside tests (system roots, server name = host).
	tlsConfig *tls.Config
}

// timeout bounds a whole SMTP conversation, so a relay that hangs is
// retried rather than awaited.
const smtpTimeout = time.Minute

// refusedError is an SMTP 5xx for the recipient or the message: sending
// the same again would be refused again.
type refusedError struct{ err error }

func (e refusedError) Error() string { return e.err.Error() }
func (e refusedError) Unwrap() error { return e.err }

// send delivers msg to rcpt and returns once the server has answered 250
// to the end of the data, without saying QUIT: the caller records the send
// first and calls quit after, so that the window in which a crash would
// send the mail again is as short as it can be. SMTP has no way to ask a
// server whether it already has a message, so that window cannot be
// closed; the Message-ID, the same on every attempt, lets mail clients
// fold a rare duplicate.
func (m *mailer) send(ctx context.Context, rcpt string, msg []byte) (quit func(), err error) {
	addr := net.JoinHostPort(m.cfg.Host, strconv.Itoa(m.cfg.Port))
	ctx, cancel := context.WithTimeout(ctx, smtpTimeout)
	defer cancel()
	tlsConfig := m.tlsConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: m.cfg.Host, MinVersion: tls.VersionTLS12}
	}
	var conn net.Conn
	if m.cfg.TLS == "tls" {
		conn, err = (&tls.Dialer{Config: tlsConfig}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("smtp %s: %w", addr, err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, m.cfg.Host)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("smtp %s: %w", addr, err)
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	if m.cfg.TLS == "starttls" {
		if has, _ := c.Extension("STARTTLS"); !has {
			return nil, fmt.Errorf("smtp %s: the server does not offer STARTTLS (set notify.smtp.tls: none for a trusted local relay)", addr)
		}
		if err := c.StartTLS(tlsConfig); err != nil {
			return nil, fmt.Errorf("smtp %s: starttls: %w", addr, err)
		}
	}
	if m.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.password, m.cfg.Host)); err != nil {
			return nil, fmt.Errorf("smtp %s: auth: %w", addr, err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return nil, fmt.Errorf("smtp %s: MAIL FROM: %w", addr, err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return nil, refusal(fmt.Errorf("smtp %s: RCPT TO %s: %w", addr, rcpt, err))
	}
	w, err := c.Data()
	if err != nil {
		return nil, fmt.Errorf("smtp %s: DATA: %w", addr, err)
	}
	if _, err := w.Write(msg); err != nil {
		return nil, fmt.Errorf("smtp %s: message: %w", addr, err)
	}
	if err := w.Close(); err != nil {
		return nil, refusal(fmt.Errorf("smtp %s: message: %w", addr, err))
	}
	ok = true
	return func() {
		if c.Quit() != nil {
			c.Close()
		}
	}, nil
}

// refusal marks a 5xx answer as final; 4xx and broken connections are
// retried.
func refusal(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return refusedError{err}
	}
	return err
}

// message builds a multipart/alternative mail with a plain-text and an
// HTML part, both quoted-printable UTF-8.
func message(from *mail.Address, to, messageID string, date time.Time, r rendered) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range []struct{ typ, text string }{{"text/plain", r.text}, {"text/html", r.html}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(strings.ReplaceAll(p.text, "\r\n", "\n"))); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from.String())
	header("To", (&mail.Address{Address: to}).String())
	header("Subject", mime.QEncoding.Encode("utf-8", r.subject))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", messageID)
	header("MIME-Version", "1.0")
	// Auto-Submitted keeps vacation responders from answering (RFC 3834).
	header("Auto-Submitted", "auto-generated")
	header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	// quotedprintable writes CRLF line ends inside parts; the multipart
	// writer uses CRLF around boundaries.
	b.Write(body.Bytes())
	return b.Bytes(), nil
}

// domain is the sender's domain, for Message-IDs.
func domain(a *mail.Address) string {
	if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
		return d
	}
	return "hikeshi.invalid"
}
