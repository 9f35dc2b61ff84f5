package webhook

import "strings"

// nameOK reports whether s is between minLen and maxLen bytes of ASCII
// letters, digits and the bytes in extra: the shape of broker names
// (exchanges, topics, streams). A loop, not a regexp: a counted
// repetition such as {1,249} compiles to a program of that many states,
// kept in memory for the life of the process.
func nameOK(s string, minLen, maxLen int, extra string) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(extra, c) >= 0:
		default:
			return false
		}
	}
	return true
}
