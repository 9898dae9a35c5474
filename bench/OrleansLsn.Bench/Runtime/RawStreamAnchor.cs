using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace OrleansLsn.Bench.Runtime;

/// <summary>
/// The ceiling for one-way pushes: one loopback TCP connection, the sender writing <c>count</c> length-prefixed frames
/// of an 8-byte number through a <see cref="PipeWriter"/> (flushing every 64 KiB), the receiver parsing and counting
/// them with a <see cref="PipeReader"/>. No per-message queueing, dispatch or thread hop: what the socket can carry.
/// </summary>
internal static class RawStreamAnchor
{
    private const int PayloadBytes = sizeof(long);
    private const int FlushEvery = 64 * 1024;

    /// <summary>Frames per second from the first write to the last frame parsed.</summary>
    /// <exception cref="InvalidDataException">A frame arrived with another number than expected.</exception>
    public static async Task<double> MeasureAsync(int count, CancellationToken cancellationToken)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var receiving = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await receiving.ConnectAsync((IPEndPoint)listener.LocalEndPoint!, cancellationToken).ConfigureAwait(false);
        using Socket sending = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
        sending.NoDelay = true;

        await using var receiveStream = new NetworkStream(receiving, ownsSocket: false);
        await using var sendStream = new NetworkStream(sending, ownsSocket: false);
        PipeReader reader = PipeReader.Create(receiveStream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, leaveOpen: true));
        PipeWriter writer = PipeWriter.Create(sendStream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024, leaveOpen: true));
        try
        {
            long start = Stopwatch.GetTimestamp();
            Task<long> received = Task.Run(() => ReceiveAsync(reader, count, cancellationToken), cancellationToken);
            byte[] payload = new byte[PayloadBytes];
            for (int i = 0; i < count; i++)
            {
                BinaryPrimitives.WriteInt64LittleEndian(payload, i);
                EchoFrames.Write(writer, payload);
                if (writer.UnflushedBytes >= FlushEvery)
                {
                    await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
            }

            await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
            long last = await received.WaitAsync(TimeSpan.FromMinutes(1), cancellationToken).ConfigureAwait(false);
            return count / Stopwatch.GetElapsedTime(start, last).TotalSeconds;
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
            await writer.CompleteAsync().ConfigureAwait(false);
        }
    }

    private static async Task<long> ReceiveAsync(PipeReader reader, int count, CancellationToken cancellationToken)
    {
        byte[] number = new byte[PayloadBytes];
        int next = 0;
        while (true)
        {
            ReadResult result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            while (EchoFrames.TryRead(ref buffer, out ReadOnlySequence<byte> frame))
            {
                frame.Slice(EchoFrames.PrefixSize).CopyTo(number);
                if (BinaryPrimitives.ReadInt64LittleEndian(number) != next)
                {
                    throw new InvalidDataException($"Frame {next} carried another number.");
                }

                if (++next == count)
                {
                    return Stopwatch.GetTimestamp();
                }
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                throw new IOException($"The stream ended after {next} of {count} frames.");
            }
        }
    }
}
