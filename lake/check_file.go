package lake

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// explain diagnoses a failed Check step on a local folder.
func (b *FileBucket) explain(_ context.Context, op probeOp, err error) error {
	what := "lake " + b.root
	if p := contextProblem(what, op, err); p != nil {
		return p
	}
	reason := oneLine(err)
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		reason = pe.Err.Error()
	case errors.As(err, &le):
		reason = le.Err.Error()
	}
	fix := "make the folder writable by this user or choose another --lake"
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		fix = "free some space or choose another --lake"
	case errors.Is(err, syscall.EROFS):
		fix = "mount it read-write or choose another --lake"
	case errors.Is(err, syscall.ENOTDIR):
		fix = "a file is in the way of a folder; move it or choose another --lake"
	}
	var msg string
	switch op {
	case opWrite:
		msg = fmt.Sprintf("%s is not writable: %s (%s)", what, reason, fix)
	case opList:
		msg = fmt.Sprintf("%s cannot be listed: %s (make the folder readable by this user or choose another --lake)", what, reason)
	case opRead:
		msg = fmt.Sprintf("%s is not readable: %s (make the folder readable by this user or choose another --lake)", what, reason)
	default:
		msg = fmt.Sprintf("%s does not allow deleting files: %s (%s)", what, reason, fix)
	}
	return &problem{msg: msg, err: err}
}

// fileProblem explains why a lake folder cannot be created or opened.
func fileProblem(root string, err error) error {
	var pe *fs.PathError
	reason := oneLine(err)
	if errors.As(err, &pe) {
		reason = pe.Err.Error()
		if pe.Path != root {
			reason = fmt.Sprintf("%s: %s", pe.Path, reason)
		}
	}
	fix := "make the parent folder writable by this user or choose another --lake"
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EEXIST) {
		fix = "a file is in the way of a folder; move it or choose another --lake"
	}
	return &problem{msg: fmt.Sprintf("lake %s cannot be created: %s (%s)", root, reason, fix), err: err}
}
