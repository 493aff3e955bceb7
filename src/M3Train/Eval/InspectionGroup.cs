using M3Train.Model;

namespace M3Train.Eval;

/// <summary>Health figures of one kind of text (queries, passages, plain texts) in an <see cref="InspectionReport"/>.</summary>
public sealed record InspectionGroup(string Name, SparseHealthFigures Figures);
