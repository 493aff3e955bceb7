namespace M3Train.Config;

/// <summary>One key of a config reference.</summary>
/// <param name="Key">The dotted path users write (<c>train.lr</c>).</param>
/// <param name="Type">What the binder accepts there (<c>a number</c>, <c>one of linear, log</c>).</param>
/// <param name="Default">The default as the resolved config prints it.</param>
/// <param name="Doc">The property's doc comment; empty when it has none.</param>
public sealed record ConfigKeyDoc(string Key, string Type, string Default, string Doc);
