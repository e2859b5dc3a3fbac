package azureauth

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// The transport rules every request carrying a credential follows: which
// URLs may carry one, and that a redirect never takes it elsewhere.

// IsLoopback reports whether host (a URL's Hostname(), or a listen
// address's host) is this machine: localhost, 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckServiceURL checks the URL of a service a credential is sent to: an
// absolute https URL, or plain http on loopback only (a local stand-in or
// proxy), where nothing crosses a network. key names the setting and example
// is a good value, for the message.
func CheckServiceURL(key, raw, example string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "" || err != nil || u.Host == "":
		return fmt.Errorf("%s %q is not an absolute URL: use %s", key, raw, example)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && IsLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("%s %q uses http: the credential and the data would cross the network unencrypted; use https (%s); plain http is accepted only on loopback (localhost, 127.0.0.0/8, ::1)", key, raw, example)
	}
	return fmt.Errorf("%s %q is not an https URL: use %s", key, raw, example)
}

// RefuseRedirects returns a copy of c that hands a redirect (3xx) back to
// its caller instead of following it. Go's client follows redirects
// re-sending custom headers such as x-api-key, and on 307/308 the body (a
// query, or a token request with its client secret), to wherever Location
// points; a caller that gets the 3xx says where it pointed instead.
func RefuseRedirects(c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	copied := *c
	copied.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &copied
}

// DescribeRedirect says where a 3xx answer pointed and why it is not
// followed: for an error message, never with the Location's query (it may
// hold a token).
func DescribeRedirect(service string, resp *http.Response) string {
	where := "no Location"
	if loc, err := resp.Location(); err == nil {
		where = "Location host " + loc.Host
	}
	return fmt.Sprintf("%s answered %s redirecting elsewhere (%s); redirects are not followed because they would carry the credential and the request to another host: if that host is the service's, configure its URL directly", service, resp.Status, where)
}
