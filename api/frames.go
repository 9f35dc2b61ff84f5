package api

import (
	"net/http"

	"github.com/posgate/posgate/device"
)

// handleDeviceFrames shows a device's last frames on the wire, decoded and
// with card data masked, newest last: what a technician asks for first
// when a terminal misbehaves.
func handleDeviceFrames(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr, ok := d.Traces[r.PathValue("id")]
		if !ok {
			writeError(w, r, d.Log, notFound("frame trace of device "+r.PathValue("id")))
			return
		}
		writeList[device.Frame](w, tr.Frames(), "")
	})
}
