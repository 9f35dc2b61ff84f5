package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// pageParams reads ?cursor= and ?limit= (1 to max; 0 when absent, for the
// owner's default).
func pageParams(r *http.Request, max int) (cursor string, limit int, err error) {
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > max {
			return "", 0, validationError("limit", fmt.Sprintf("must be an integer from 1 to %d", max))
		}
	}
	return q.Get("cursor"), limit, nil
}

// timeParam reads an RFC 3339 time; zero when absent.
func timeParam(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, validationError(name, "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	}
	return t, nil
}

// listParams reads ?since=, ?cursor= and ?limit= (at most 200) for the
// resource lists (payments, invoices).
func listParams(r *http.Request) (since time.Time, cursor string, limit int, err error) {
	if since, err = timeParam("since", r.URL.Query().Get("since")); err != nil {
		return time.Time{}, "", 0, err
	}
	cursor, limit, err = pageParams(r, 200)
	return since, cursor, limit, err
}
