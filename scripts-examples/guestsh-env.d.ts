// Recipes run without Node: buffers returned by guestfs calls arrive as
// plain Uint8Array. The generated API names them Buffer.
type Buffer = Uint8Array;
