package ingest

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SNS SignatureVersion 1 is SHA1withRSA
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// snsMessage is an SNS HTTP(S) delivery.
type snsMessage struct {
	Type             string `json:"Type"`
	MessageID        string `json:"MessageId"`
	Token            string `json:"Token"`
	TopicArn         string `json:"TopicArn"`
	Subject          string `json:"Subject"`
	Message          string `json:"Message"`
	SubscribeURL     string `json:"SubscribeURL"`
	Timestamp        string `json:"Timestamp"`
	SignatureVersion string `json:"SignatureVersion"`
	Signature        string `json:"Signature"`
	SigningCertURL   string `json:"SigningCertURL"`
	UnsubscribeURL   string `json:"UnsubscribeURL"`
}

// snsHost is the only kind of host SNS signs from and confirms through.
var snsHost = regexp.MustCompile(`^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)

// CertFetcher returns the certificate at an SNS SigningCertURL.
type CertFetcher func(ctx context.Context, certURL string) (*x509.Certificate, error)

// snsVerifier checks SNS deliveries.
type snsVerifier struct {
	topics []string // allow-list of topic ARNs
	fetch  CertFetcher
	// confirm visits a SubscribeURL.
	confirm func(ctx context.Context, u string) error
	maxAge  time.Duration
	now     func() time.Time
}

// checkSNSURL accepts only https URLs on an SNS host.
func checkSNSURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || !snsHost.MatchString(u.Hostname()) || u.Port() != "" {
		return nil, denied("%s %q is not an https URL on an sns.<region>.amazonaws.com host", field, raw)
	}
	return u, nil
}

// verify checks topic, certificate URL, signature and age. It runs on the
// SNS envelope only; the Message inside is parsed after it succeeds.
func (v *snsVerifier) verify(ctx context.Context, m *snsMessage) error {
	if !slices.Contains(v.topics, m.TopicArn) {
		return denied("topic %q is not allowed", m.TopicArn)
	}
	if _, err := checkSNSURL("SigningCertURL", m.SigningCertURL); err != nil {
		return err
	}
	var h crypto.Hash
	switch m.SignatureVersion {
	case "1":
		h = crypto.SHA1
	case "2":
		h = crypto.SHA256
	default:
		return denied("SignatureVersion %q is not supported", m.SignatureVersion)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return denied("Signature is not base64")
	}
	ts, err := time.Parse(time.RFC3339, m.Timestamp)
	if err != nil {
		return denied("Timestamp %q is not RFC 3339", m.Timestamp)
	}
	if age := v.now().Sub(ts); age > v.maxAge || age < -5*time.Minute {
		return denied("message is too old or from the future (Timestamp %s)", m.Timestamp)
	}
	cert, err := v.fetch(ctx, m.SigningCertURL)
	if err != nil {
		return fmt.Errorf("signing certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return denied("signing certificate has no RSA key")
	}
	sum := digest(h, snsStringToSign(m))
	if err := rsa.VerifyPKCS1v15(pub, h, sum, sig); err != nil {
		return denied("SNS signature does not verify")
	}
	return nil
}

func digest(h crypto.Hash, s string) []byte {
	if h == crypto.SHA1 {
		d := sha1.Sum([]byte(s)) //nolint:gosec
		return d[:]
	}
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// snsStringToSign builds the canonical string: name and value lines of
// the signed fields, in byte order of their names.
func snsStringToSign(m *snsMessage) string {
	var fields [][2]string
	if m.Type == "Notification" {
		fields = [][2]string{{"Message", m.Message}, {"MessageId", m.MessageID}}
		if m.Subject != "" {
			fields = append(fields, [2]string{"Subject", m.Subject})
		}
		fields = append(fields, [2]string{"Timestamp", m.Timestamp}, [2]string{"TopicArn", m.TopicArn}, [2]string{"Type", m.Type})
	} else {
		fields = [][2]string{{"Message", m.Message}, {"MessageId", m.MessageID}, {"SubscribeURL", m.SubscribeURL},
			{"Timestamp", m.Timestamp}, {"Token", m.Token}, {"TopicArn", m.TopicArn}, {"Type", m.Type}}
	}
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(f[0] + "\n" + f[1] + "\n")
	}
	return b.String()
}

// httpCerts fetches and caches signing certificates over HTTPS. A fetch
// holds no lock, and the requests that need the same certificate at the
// same time wait for one fetch.
type httpCerts struct {
	client *http.Client
	log    *slog.Logger
	flight singleflight.Group
	mu     sync.Mutex
	cache  map[string]*x509.Certificate
}

var errCertUnavailable = &keysUnavailable{what: "the SNS signing certificate"}

func (c *httpCerts) fetch(ctx context.Context, certURL string) (*x509.Certificate, error) {
	c.mu.Lock()
	cert, ok := c.cache[certURL]
	c.mu.Unlock()
	if ok {
		return cert, nil
	}
	return fetchOnce(ctx, &c.flight, certURL, errCertUnavailable, func(ctx context.Context) (*x509.Certificate, error) {
		cert, err := c.get(ctx, certURL)
		if err != nil {
			c.log.Warn("signals: cannot fetch an SNS signing certificate; its deliveries answer 503 until it can be fetched",
				"url", certURL, "err", err)
			return nil, errCertUnavailable
		}
		c.mu.Lock()
		c.cache[certURL] = cert
		c.mu.Unlock()
		return cert, nil
	})
}

func (c *httpCerts) get(ctx context.Context, certURL string) (*x509.Certificate, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, certURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// visit GETs a SubscribeURL (only on an SNS host) to confirm a subscription.
func visit(client *http.Client) func(ctx context.Context, u string) error {
	return func(ctx context.Context, u string) error {
		if _, err := checkSNSURL("SubscribeURL", u); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("confirm subscription: %s", resp.Status)
		}
		return nil
	}
}
