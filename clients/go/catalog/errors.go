package catalog

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	modelcatalogv1 "modelcatalog/clients/go/gen/modelcatalog/v1"
)

// ErrorDomain is the ErrorInfo domain of every error the server sends.
const ErrorDomain = "modelcatalog.v1"

// ErrorInfo returns the google.rpc.ErrorInfo in the status details of err (the
// grpc-status-details-bin trailer), or nil when there is none.
func ErrorInfo(err error) *errdetails.ErrorInfo {
	for _, detail := range status.Convert(err).Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// Reason returns why a call failed as the declared ErrorReason: the ErrorInfo's reason is
// the enum value's name without its "ERROR_REASON_" prefix. It is ERROR_REASON_UNSPECIFIED
// when err carries no ErrorInfo of this server, or a reason newer than this generated code
// (then branch on the status code).
func Reason(err error) modelcatalogv1.ErrorReason {
	info := ErrorInfo(err)
	if info == nil || info.Domain != ErrorDomain {
		return modelcatalogv1.ErrorReason_ERROR_REASON_UNSPECIFIED
	}
	return modelcatalogv1.ErrorReason(modelcatalogv1.ErrorReason_value["ERROR_REASON_"+info.Reason])
}
