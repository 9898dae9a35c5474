namespace OrleansLsn.Runtime.Messaging;

/// <summary>The first byte of every frame body.</summary>
internal enum MessageKind : byte
{
    Request = 1,
    Response = 2,
    Cancel = 3,

    /// <summary>Silo → client on accept: protocol version and the silo's nonce.</summary>
    Challenge = 16,

    /// <summary>Client → silo: cluster id, client id, the client's nonce and its proof of the secret.</summary>
    Hello = 17,

    /// <summary>Silo → client: accepted, with the silo's proof of the secret.</summary>
    Welcome = 18,

    /// <summary>Silo → client: refused, with a reason; the silo then closes the connection.</summary>
    Refused = 19,
}

/// <summary>How a request ended.</summary>
internal enum ResponseStatus : byte
{
    Ok = 0,
    Exception = 1,
    UnknownInterface = 2,
    UnknownMethod = 3,
    ClientNotAvailable = 4,
    Canceled = 5,
}

[Flags]
internal enum RequestFlags : byte
{
    None = 0,
    OneWay = 1,
}
