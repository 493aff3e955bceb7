using System.Runtime.InteropServices;
using Serilog;

namespace M3Train.Training;

/// <summary>
/// Turns SIGINT (Ctrl-C) and SIGTERM into a request to stop after the current step, so the trainer can save a
/// checkpoint and exit cleanly instead of dying mid-write. A second signal is not intercepted again.
/// </summary>
public sealed class StopSignal : IDisposable
{
    readonly List<PosixSignalRegistration> _registrations = [];
    volatile string? _reason;

    public StopSignal()
    {
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, ctx =>
            {
                if (_reason != null) return;
                _reason = signal.ToString();
                ctx.Cancel = true;
                Log.Warning("{Signal}: stopping after the current step with a checkpoint (a second {Signal} stops at once, losing the steps since the last checkpoint)", signal, signal);
            }));
        }
    }

    public bool Requested => _reason != null;
    public string? Reason => _reason;

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
    }
}
