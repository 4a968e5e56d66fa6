<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN">
<context>
    <name>AttachDialog</name>
    <message>
        <source>Attach to an engine</source>
        <translation>连接到一个引擎</translation>
    </message>
    <message>
        <source>An engine started elsewhere with &lt;code&gt;sockscope serve --control HOST:PORT&lt;/code&gt; prints its control port and its token. Through an SSH tunnel, attach to 127.0.0.1 and the tunnel&apos;s local port.</source>
        <translation>在别处用 &lt;code&gt;sockscope serve --control HOST:PORT&lt;/code&gt; 启动的引擎会打印它的控制端口和令牌。通过 SSH 隧道时，请连接 127.0.0.1 和隧道在本机的端口。</translation>
    </message>
    <message>
        <source>the token the engine printed</source>
        <translation>引擎打印出的令牌</translation>
    </message>
    <message>
        <source>Show</source>
        <translation>显示</translation>
    </message>
    <message>
        <source>Host</source>
        <translation>主机</translation>
    </message>
    <message>
        <source>Control port</source>
        <translation>控制端口</translation>
    </message>
    <message>
        <source>Token</source>
        <translation>令牌</translation>
    </message>
    <message>
        <source>Attach</source>
        <translation>连接</translation>
    </message>
</context>
<context>
    <name>Attachment</name>
    <message>
        <source>Attaching to {0}…</source>
        <translation>正在连接 {0}…</translation>
    </message>
    <message>
        <source>Cannot attach</source>
        <translation>无法连接</translation>
    </message>
    <message>
        <source>The engine at {0} refused the token. Copy the token from the line “control: …  token: …” the engine printed.</source>
        <translation>{0} 上的引擎拒绝了这个令牌。请从引擎打印的“control: …  token: …”这一行复制令牌。</translation>
    </message>
    <message>
        <source>The engine at {0} is busy (too many windows attached or attaching); try again later.</source>
        <translation>{0} 上的引擎正忙（已连接或正在连接的窗口太多）；请稍后再试。</translation>
    </message>
    <message>
        <source>Nothing answers at {0} ({1}). Is the engine running with --control, and the SSH tunnel open?</source>
        <translation>{0} 没有应答（{1}）。引擎是否以 --control 运行？SSH 隧道是否已打开？</translation>
    </message>
    <message>
        <source>The engine at {0} did not answer.</source>
        <translation>{0} 上的引擎没有应答。</translation>
    </message>
    <message>
        <source>The engine at {0} refused to attach ({1}): is it SockScope&apos;s control port, of this version?</source>
        <translation>{0} 上的引擎拒绝连接（{1}）：这是 SockScope 的控制端口吗？版本一致吗？</translation>
    </message>
    <message>
        <source>Attached: the clients run inside the attached engine, against its own URL {0}</source>
        <translation>已连接：客户端在所连接的引擎内部运行，访问它自己的 URL {0}</translation>
    </message>
    <message>
        <source>Attached to {0}. Traffic runs inside it, against {1}; its web page from here: {2} (through an SSH tunnel, forward that port as well).</source>
        <translation>已连接到 {0}。流量在它内部运行，访问 {1}；从这里打开它的网页：{2}（通过 SSH 隧道时，这个端口也要转发）。</translation>
    </message>
    <message>
        <source>The attached engine&apos;s settings: Apply serves its port again with these</source>
        <translation>所连接引擎的设置：点“应用”后，它会用这些设置在原端口上重新提供服务</translation>
    </message>
    <message>
        <source>The attached engine at {0} serves again as {1}: its events say when</source>
        <translation>{0} 上所连接的引擎将以 {1} 重新提供服务：它的事件会说明何时生效</translation>
    </message>
    <message>
        <source>the attached engine at {0} ended</source>
        <translation>所连接的 {0} 上的引擎已结束</translation>
    </message>
    <message>
        <source>attached to {0}</source>
        <translation>已连接到 {0}</translation>
    </message>
    <message>
        <source>Back to the local engine</source>
        <translation>回到本机引擎</translation>
    </message>
    <message>
        <source>The attached engine at {0} ended (it stopped, or the connection to it was lost). Nothing recorded is lost: File → Attach to an engine… again, or back to the local engine.</source>
        <translation>所连接的 {0} 上的引擎已结束（它停止了，或者连接断了）。已录制的内容都没有丢失：可以再次选 文件 → 连接到引擎…，或者回到本机引擎。</translation>
    </message>
</context>
<context>
    <name>CompareWindow</name>
    <message>
        <source>SockScope: compare</source>
        <translation>SockScope：对比</translation>
    </message>
    <message>
        <source>keep-alive</source>
        <translation>长连接（keep-alive）</translation>
    </message>
    <message>
        <source>short connections</source>
        <translation>短连接</translation>
    </message>
    <message>
        <source>Run on every engine at once</source>
        <translation>同时在每个服务器上运行</translation>
    </message>
    <message>
        <source>clients</source>
        <translation>客户端</translation>
    </message>
    <message>
        <source>requests each</source>
        <translation>每个的请求数</translation>
    </message>
    <message>
        <source>idle connections</source>
        <translation>空闲连接</translation>
    </message>
    <message>
        <source>Side by side, live</source>
        <translation>并排对比（实时）</translation>
    </message>
    <message>
        <source>As connections grow</source>
        <translation>连接越来越多时</translation>
    </message>
    <message>
        <source>Measure (a few minutes)</source>
        <translation>测量（需要几分钟）</translation>
    </message>
    <message>
        <source>idle connections:</source>
        <translation>空闲连接数：</translation>
    </message>
    <message>
        <source>The chart comes from real runs: press Measure.</source>
        <translation>图表来自真实的运行：请按“测量”。</translation>
    </message>
    <message>
        <source>No chart: the measurement ended with {0}.</source>
        <translation>没有图表：测量以 {0} 结束。</translation>
    </message>
</context>
<context>
    <name>DiagramView</name>
    <message>
        <source>connect() / snd SYN</source>
        <translation>connect() / 发 SYN</translation>
    </message>
    <message>
        <source>rcv SYN / snd SYN,ACK</source>
        <translation>收 SYN / 发 SYN,ACK</translation>
    </message>
    <message>
        <source>rcv SYN,ACK / snd ACK</source>
        <translation>收 SYN,ACK / 发 ACK</translation>
    </message>
    <message>
        <source>rcv ACK of SYN</source>
        <translation>收到 SYN 的 ACK</translation>
    </message>
    <message>
        <source>close() / snd FIN</source>
        <translation>close() / 发 FIN</translation>
    </message>
    <message>
        <source>rcv FIN / snd ACK</source>
        <translation>收 FIN / 发 ACK</translation>
    </message>
    <message>
        <source>rcv ACK of FIN</source>
        <translation>收到 FIN 的 ACK</translation>
    </message>
    <message>
        <source>2 MSL (Linux: 60 s)</source>
        <translation>2 MSL（Linux：60 秒）</translation>
    </message>
    <message>
        <source>rcv FIN,ACK / snd ACK</source>
        <translation>收 FIN,ACK / 发 ACK</translation>
    </message>
    <message>
        <source>abort / snd RST</source>
        <translation>中止 / 发 RST</translation>
    </message>
    <message>
        <source>rcv RST</source>
        <translation>收 RST</translation>
    </message>
    <message>
        <source>snd {0} again ×{1}</source>
        <translation>重发 {0} ×{1}</translation>
    </message>
    <message>
        <source>client</source>
        <translation>客户端</translation>
    </message>
    <message>
        <source>server</source>
        <translation>服务器</translation>
    </message>
    <message>
        <source>captured</source>
        <translation>抓包</translation>
    </message>
    <message>
        <source>derived</source>
        <translation>推导</translation>
    </message>
    <message>
        <source>observed</source>
        <translation>观测</translation>
    </message>
    <message>
        <source>inferred</source>
        <translation>推断</translation>
    </message>
    <message>
        <source>traced</source>
        <translation>跟踪</translation>
    </message>
    <message>
        <source>No TCP states yet. Run some traffic, or open a trace recorded with states (--states).</source>
        <translation>还没有 TCP 状态。产生一些流量，或打开一个记录了状态（--states）的 trace。</translation>
    </message>
    <message>
        <source>Connection {0} → {1}</source>
        <translation>连接 {0} → {1}</translation>
    </message>
    <message>
        <source> (from segments {0})</source>
        <translation>（来自{0}的报文段）</translation>
    </message>
    <message>
        <source>states: {0}</source>
        <translation>状态：{0}</translation>
    </message>
    <message>
        <source>checked: {0}</source>
        <translation>核对：{0}</translation>
    </message>
    <message>
        <source>⚠ the capture lost {0} frames meanwhile</source>
        <translation>⚠ 其间抓包丢失了 {0} 帧</translation>
    </message>
    <message>
        <source>No state of this connection yet at this moment.</source>
        <translation>此刻这个连接还没有状态。</translation>
    </message>
    <message>
        <source>The {0} went from {1} to {2}</source>
        <translation>{0}从 {1} 进入 {2}</translation>
    </message>
    <message>
        <source>{0}: {1}</source>
        <translation>{0}：{1}</translation>
    </message>
    <message>
        <source> (segment {0}, {1})</source>
        <translation>（报文段 {0}，{1}）</translation>
    </message>
    <message>
        <source> (the kernel&apos;s poll saw it)</source>
        <translation>（内核轮询看到的）</translation>
    </message>
    <message>
        <source>{0}.</source>
        <translation>{0}。</translation>
    </message>
    <message>
        <source>One segment did both: the peer&apos;s FIN rode on the ACK of ours, and Linux passed FIN_WAIT_2 in the same microsecond (the classic figure has no such arrow).</source>
        <translation>一个报文段完成了两步：对端的 FIN 搭在了对我方 FIN 的 ACK 上，Linux 在同一微秒内经过了 FIN_WAIT_2（经典状态图里没有这条箭头）。</translation>
    </message>
    <message>
        <source>A reset ends the connection at once, from any state: no FIN exchange, no TIME_WAIT.</source>
        <translation>RST 从任何状态都会立即结束连接：没有 FIN 交换，也没有 TIME_WAIT。</translation>
    </message>
    <message>
        <source>The {0} waits in TIME_WAIT for 2 MSL (60 s on Linux): {1} left.</source>
        <translation>{0}在 TIME_WAIT 中等待 2 MSL（Linux 上为 60 秒）：还剩 {1}。</translation>
    </message>
    <message>
        <source>The server sent its SYN,ACK again {0}× from SYN_RECV: the handshake&apos;s last ACK did not arrive.</source>
        <translation>服务器在 SYN_RECV 中重发了 {0} 次 SYN,ACK：握手的最后一个 ACK 没有到达。</translation>
    </message>
    <message>
        <source>The client sent its SYN again {0}× from SYN_SENT: no SYN,ACK came back in time.</source>
        <translation>客户端在 SYN_SENT 中重发了 {0} 次 SYN：没有及时收到 SYN,ACK。</translation>
    </message>
    <message>
        <source>TCP state diagram</source>
        <translation>TCP 状态图</translation>
    </message>
</context>
<context>
    <name>EnginePane</name>
    <message>
        <source>(not started)</source>
        <translation>（未启动）</translation>
    </message>
    <message>
        <source>idle clients: the helper ended</source>
        <translation>空闲客户端：辅助进程已结束</translation>
    </message>
    <message>
        <source>answered: {0:,.0f} req/s   ({1:,} responses)</source>
        <translation>已回答：{0:,.0f} 个请求/秒（共 {1:,} 个响应）</translation>
    </message>
    <message>
        <source>answer time (server): p50 {0}  p99 {1}</source>
        <translation>回答用时（服务器端）：p50 {0}  p99 {1}</translation>
    </message>
    <message>
        <source>CPU {0}   threads {1} (most {2})   memory {3}</source>
        <translation>CPU {0}   线程 {1}（最多 {2}）   内存 {3}</translation>
    </message>
    <message>
        <source>open connections {0:,}   errors {1:,}</source>
        <translation>打开的连接 {0:,}   错误 {1:,}</translation>
    </message>
    <message>
        <source>opening {0:,} idle connections…</source>
        <translation>正在打开 {0:,} 个空闲连接…</translation>
    </message>
</context>
<context>
    <name>EventTableModel</name>
    <message>
        <source>time (ms)</source>
        <translation>时间 (ms)</translation>
    </message>
    <message>
        <source>source</source>
        <translation>来源</translation>
    </message>
    <message>
        <source>kind</source>
        <translation>类型</translation>
    </message>
    <message>
        <source>connection</source>
        <translation>连接</translation>
    </message>
    <message>
        <source>fd</source>
        <translation>fd</translation>
    </message>
    <message>
        <source>details</source>
        <translation>详情</translation>
    </message>
</context>
<context>
    <name>HttpView</name>
    <message>
        <source>Request bytes, as received</source>
        <translation>收到的请求原始字节</translation>
    </message>
    <message>
        <source>Headers, as parsed</source>
        <translation>解析出的请求头</translation>
    </message>
    <message>
        <source>Response</source>
        <translation>响应</translation>
    </message>
    <message>
        <source>No request yet at this point of the timeline</source>
        <translation>时间线上的这一刻还没有请求</translation>
    </message>
    <message>
        <source>Send one with the traffic buttons, or open the URL in a browser.</source>
        <translation>用流量按钮发一个请求，或在浏览器中打开 URL。</translation>
    </message>
    <message>
        <source>group(1): {0}</source>
        <translation>group(1)：{0}</translation>
    </message>
    <message>
        <source>outside ./html: a path traversal</source>
        <translation>在 ./html 之外：路径穿越</translation>
    </message>
    <message>
        <source>no such file</source>
        <translation>没有这个文件</translation>
    </message>
    <message>
        <source>(the recording does not say)</source>
        <translation>（录制中没有记录）</translation>
    </message>
    <message>
        <source>(the site, looked at when recorded)</source>
        <translation>（录制时查看过网站）</translation>
    </message>
    <message>
        <source>group(1): {0} → the lecture&apos;s server opens {1} → {2}</source>
        <translation>group(1)：{0} → 讲义的服务器打开 {1} → {2}</translation>
    </message>
    <message>
        <source>httptools: {0} → {1}</source>
        <translation>httptools：{0} → {1}</translation>
    </message>
    <message>
        <source>httptools: {0} ({1}) → this server names no file → {2}</source>
        <translation>httptools：{0}（{1}）→ 本服务器不对应任何文件 → {2}</translation>
    </message>
    <message>
        <source>httptools: {0} ({1}) → this server refuses the name {2} → {3}</source>
        <translation>httptools：{0}（{1}）→ 本服务器拒绝这个名字 {2} → {3}</translation>
    </message>
    <message>
        <source>httptools: {0} ({1}) → this server looks for {2} → {3}</source>
        <translation>httptools：{0}（{1}）→ 本服务器查找 {2} → {3}</translation>
    </message>
    <message>
        <source>Refused with {0} on connection {1} → {2}: the parser said no</source>
        <translation>连接 {1} → {2} 被以 {0} 拒绝：解析器不接受</translation>
    </message>
    <message>
        <source>Request {0} of {1} on connection {2} → {3}</source>
        <translation>连接 {2} → {3} 上的第 {0} 个请求（共 {1} 个）</translation>
    </message>
    <message>
        <source>response body, first bytes (binary: \xNN is one byte):</source>
        <translation>响应正文开头的字节（二进制：\xNN 表示一个字节）：</translation>
    </message>
    <message>
        <source>response body, first bytes:</source>
        <translation>响应正文开头的字节：</translation>
    </message>
    <message>
        <source>no match</source>
        <translation>不匹配</translation>
    </message>
    <message>
        <source>the same</source>
        <translation>一致</translation>
    </message>
    <message>
        <source>they differ</source>
        <translation>不一致</translation>
    </message>
    <message>
        <source>refused: {0}</source>
        <translation>拒绝：{0}</translation>
    </message>
    <message>
        <source>… cut at 2,048 characters</source>
        <translation>……超过 2048 个字符，已截断</translation>
    </message>
    <message>
        <source>keep-alive</source>
        <translation>keep-alive（保持连接）</translation>
    </message>
    <message>
        <source>close after this answer</source>
        <translation>响应后关闭</translation>
    </message>
    <message>
        <source>connection: {0}</source>
        <translation>连接：{0}</translation>
    </message>
    <message>
        <source>The parser stopped here and the server answered with an error instead: {0}</source>
        <translation>解析器在这里停下，服务器改为回答一个错误：{0}</translation>
    </message>
    <message>
        <source>not answered yet</source>
        <translation>尚未响应</translation>
    </message>
    <message>
        <source>{0} bytes more</source>
        <translation>还有 {0} 字节</translation>
    </message>
    <message>
        <source>{0} bytes of body</source>
        <translation>响应体 {0} 字节</translation>
    </message>
    <message>
        <source>not delivered: the client had gone ({0})</source>
        <translation>没有送达：客户端已经离开（{0}）</translation>
    </message>
    <message>
        <source>Not Modified: the client&apos;s copy is current (its If-None-Match matched the ETag, or If-Modified-Since the Last-Modified), so no body is sent. This is HTTP caching: a revisit costs a head, not the file.</source>
        <translation>Not Modified（未修改）：客户端手里的副本仍是最新的（它的 If-None-Match 与 ETag 相符，或 If-Modified-Since 不早于 Last-Modified），所以不发送正文。这就是 HTTP 缓存：再次访问只花一个响应头，而不是整个文件。</translation>
    </message>
    <message>
        <source>Partial Content: only the bytes the Range header asked for, as a video player or a resumed download asks.</source>
        <translation>Partial Content（部分内容）：只发送 Range 头要求的那些字节，视频播放器和断点续传就是这样请求的。</translation>
    </message>
    <message>
        <source>Range Not Satisfiable: the range asked for starts past the end of the file.</source>
        <translation>Range Not Satisfiable（范围无法满足）：请求的范围起点超出了文件末尾。</translation>
    </message>
</context>
<context>
    <name>IoView</name>
    <message>
        <source>epoll, edge-triggered</source>
        <translation>epoll，边缘触发</translation>
    </message>
    <message>
        <source>epoll, level-triggered</source>
        <translation>epoll，水平触发</translation>
    </message>
    <message>
        <source>EDGE</source>
        <translation>边缘触发</translation>
    </message>
    <message>
        <source>LEVEL</source>
        <translation>水平触发</translation>
    </message>
    <message>
        <source>The kernel reports an fd once, when new data arrives: the server must read until EAGAIN.</source>
        <translation>新数据到达时，内核只报告一次这个 fd：服务器必须一直读到 EAGAIN 为止。</translation>
    </message>
    <message>
        <source>The kernel reports an fd in every wait while it still has unread data.</source>
        <translation>只要 fd 上还有没读完的数据，每次 wait 内核都会报告它。</translation>
    </message>
    <message>
        <source>selectors ({0}), level-triggered</source>
        <translation>selectors（{0}），水平触发</translation>
    </message>
    <message>
        <source>The portable selector waits on every registered socket and returns the ready ones, again and again while data is unread.</source>
        <translation>可移植的 selector 等待所有已注册的套接字，返回其中就绪的；只要数据没读完，就一次又一次地返回。</translation>
    </message>
    <message>
        <source>{0}, level-triggered</source>
        <translation>{0}，水平触发</translation>
    </message>
    <message>
        <source>Every call hands the kernel the whole set of watched fds, which it scans, and returns the ready ones: epoll keeps that set in the kernel instead.</source>
        <translation>每次调用都把整组被监视的 fd 交给内核，内核逐个扫描，再返回就绪的那些；epoll 则把这组 fd 一直保存在内核里。</translation>
    </message>
    <message>
        <source>One client at a time</source>
        <translation>一次服务一个客户端</translation>
    </message>
    <message>
        <source>One thread accepts a client and serves it to the end; the next clients wait in the kernel&apos;s accept queue, their handshakes done, until it comes back.</source>
        <translation>一个线程 accept 一个客户端并把它服务到底；后面的客户端握手已经完成，在内核的全连接队列（accept 队列）里等着，直到它回来。</translation>
    </message>
    <message>
        <source>A thread per connection</source>
        <translation>每个连接一个线程</translation>
    </message>
    <message>
        <source>Each connection has its own thread, blocked in recv() until its client sends; the main thread only accepts.</source>
        <translation>每个连接都有自己的线程，阻塞在 recv() 中，直到它的客户端发来数据；主线程只负责 accept。</translation>
    </message>
    <message>
        <source>Non-blocking polling</source>
        <translation>非阻塞轮询</translation>
    </message>
    <message>
        <source>One thread tries every socket in turn; nothing says which is ready, so most tries find nothing (EAGAIN).</source>
        <translation>一个线程依次尝试每个套接字；没有谁告诉它哪个已就绪，所以大多数尝试都一无所获（EAGAIN）。</translation>
    </message>
    <message>
        <source>I/O model</source>
        <translation>I/O 模型</translation>
    </message>
    <message>
        <source>Waiting for the server to say which I/O model it runs.</source>
        <translation>等待服务器告知它使用哪种 I/O 模型。</translation>
    </message>
    <message>
        <source>Every ready fd handled: the server is back in {0}, waiting, though fd {1} still holds 1 unread byte (observed)</source>
        <translation>就绪的 fd 都处理完了：服务器回到 {0} 里等待，但 fd {1} 里还有 1 字节没有读（观测）</translation>
    </message>
    <message>
        <source>Every ready fd handled: the server is back in {0}, waiting, though fd {1} still holds {2} unread bytes (observed)</source>
        <translation>就绪的 fd 都处理完了：服务器回到 {0} 里等待，但 fd {1} 里还有 {2} 字节没有读（观测）</translation>
    </message>
    <message>
        <source>Every ready fd handled: the server is back in {0}, waiting, though fd {1} still holds 1 unread byte (derived)</source>
        <translation>就绪的 fd 都处理完了：服务器回到 {0} 里等待，但 fd {1} 里还有 1 字节没有读（推导）</translation>
    </message>
    <message>
        <source>Every ready fd handled: the server is back in {0}, waiting, though fd {1} still holds {2} unread bytes (derived)</source>
        <translation>就绪的 fd 都处理完了：服务器回到 {0} 里等待，但 fd {1} 里还有 {2} 字节没有读（推导）</translation>
    </message>
    <message>
        <source>Not waiting yet: the server is registering its sockets.</source>
        <translation>还没开始等待：服务器正在注册它的套接字。</translation>
    </message>
    <message>
        <source>accept → fd {0}</source>
        <translation>accept → fd {0}</translation>
    </message>
    <message>
        <source>accepted {0}, the last fd {1}</source>
        <translation>已 accept {0} 个，最后一个是 fd {1}</translation>
    </message>
    <message>
        <source>accept EAGAIN</source>
        <translation>accept EAGAIN</translation>
    </message>
    <message>
        <source>, watched with epoll_ctl ADD</source>
        <translation>，已用 epoll_ctl ADD 加入监视</translation>
    </message>
    <message>
        <source>, added to the watched set</source>
        <translation>，已加入监视集合</translation>
    </message>
    <message>
        <source>Now: fd {0} ({1}): {2}</source>
        <translation>当前：fd {0}（{1}）：{2}</translation>
    </message>
    <message>
        <source>{0} returned nothing (timed out after {1} s): no fd is ready.</source>
        <translation>{0} 什么也没返回（{1} 秒后超时）：没有就绪的 fd。</translation>
    </message>
    <message>
        <source>{0} returned {1} ready fd(s): the server takes them in order.</source>
        <translation>{0} 返回了 {1} 个就绪的 fd：服务器按顺序逐个处理。</translation>
    </message>
    <message>
        <source>listening socket</source>
        <translation>监听套接字</translation>
    </message>
    <message>
        <source>wake-up pipe</source>
        <translation>唤醒管道</translation>
    </message>
    <message>
        <source>recv → 0: peer closed</source>
        <translation>recv → 0：对端已关闭</translation>
    </message>
    <message>
        <source>recv 0</source>
        <translation>recv 0</translation>
    </message>
    <message>
        <source>recv {0} bytes</source>
        <translation>recv {0} 字节</translation>
    </message>
    <message>
        <source>recv {0} B</source>
        <translation>recv {0} B</translation>
    </message>
    <message>
        <source>send {0} of {1} bytes (buffer full)</source>
        <translation>send {1} 字节中的 {0} 字节（缓冲区已满）</translation>
    </message>
    <message>
        <source>send {0} bytes</source>
        <translation>send {0} 字节</translation>
    </message>
    <message>
        <source>send {0} B</source>
        <translation>send {0} B</translation>
    </message>
    <message>
        <source>{0} → EAGAIN: nothing more, drained</source>
        <translation>{0} → EAGAIN：没有更多了，已读空</translation>
    </message>
    <message>
        <source>{0} EAGAIN</source>
        <translation>{0} EAGAIN</translation>
    </message>
    <message>
        <source>accept → new fd {0}</source>
        <translation>accept → 新 fd {0}</translation>
    </message>
    <message>
        <source>close ({0})</source>
        <translation>close（{0}）</translation>
    </message>
    <message>
        <source>close</source>
        <translation>close</translation>
    </message>
    <message>
        <source>epoll_ctl DEL fd {0}: no longer watched</source>
        <translation>epoll_ctl DEL fd {0}：不再监视</translation>
    </message>
    <message>
        <source>epoll_ctl MOD fd {0}: now watch {1}</source>
        <translation>epoll_ctl MOD fd {0}：改为监视 {1}</translation>
    </message>
    <message>
        <source>epoll_ctl ADD fd {0} {1}: now watched</source>
        <translation>epoll_ctl ADD fd {0} {1}：开始监视</translation>
    </message>
    <message>
        <source>fd {0} leaves the watched set</source>
        <translation>fd {0} 离开监视集合</translation>
    </message>
    <message>
        <source>gevent: a greenlet per connection, one OS thread</source>
        <translation>gevent：每个连接一个 greenlet，一个操作系统线程</translation>
    </message>
    <message>
        <source>A greenlet&apos;s recv() that would block gets EAGAIN and parks it; the hub&apos;s epoll wakes it when its fd is ready. One greenlet runs at a time.</source>
        <translation>greenlet 的 recv() 若会阻塞，就得到 EAGAIN 并挂起；fd 就绪时由 hub 的 epoll 唤醒它。同一时刻只运行一个 greenlet。</translation>
    </message>
    <message>
        <source>asyncio: a task per connection, one OS thread</source>
        <translation>asyncio：每个连接一个任务，一个操作系统线程</translation>
    </message>
    <message>
        <source>A task awaiting data is parked; the event loop&apos;s selector wakes it when its fd is ready. One task runs at a time.</source>
        <translation>等待数据的任务处于挂起状态；fd 就绪时由事件循环的选择器唤醒它。同一时刻只运行一个任务。</translation>
    </message>
    <message>
        <source>A process per connection</source>
        <translation>每个连接一个进程</translation>
    </message>
    <message>
        <source>The parent accepts and forks; the child serves with its own descriptor of the socket. The kernel sends FIN only when the last descriptor is closed.</source>
        <translation>父进程 accept 并 fork；子进程用它自己的那份套接字描述符提供服务。只有最后一个描述符关闭时，内核才发出 FIN。</translation>
    </message>
    <message>
        <source>Held before {0} (stepping): the server makes no call until it is released.</source>
        <translation>在 {0} 之前被拦住（单步）：放行之前服务器不做任何调用。</translation>
    </message>
    <message>
        <source>Every ready fd handled: the server is back in {0}, waiting</source>
        <translation>每个就绪的 fd 都处理完了：服务器回到 {0} 里等待</translation>
    </message>
    <message>
        <source>fd {0}: now watch {1}</source>
        <translation>fd {0}：改为监视 {1}</translation>
    </message>
    <message>
        <source>fd {0} joins the watched set, {1}</source>
        <translation>fd {0} 加入监视集合，{1}</translation>
    </message>
    <message>
        <source>answer {0}</source>
        <translation>响应 {0}</translation>
    </message>
    <message>
        <source>held before {0}</source>
        <translation>在 {0} 之前暂停</translation>
    </message>
    <message>
        <source>accept() → fd {0}: serving this client to the end</source>
        <translation>accept() → fd {0}：把这个客户端服务到底</translation>
    </message>
    <message>
        <source>waiting in accept() for the next client</source>
        <translation>在 accept() 中等待下一个客户端</translation>
    </message>
    <message>
        <source>waiting in accept() for a new connection</source>
        <translation>在 accept() 中等待新连接</translation>
    </message>
    <message>
        <source>accepted fd {0} ({1}), started its thread</source>
        <translation>已 accept fd {0}（{1}），并为它启动了线程</translation>
    </message>
    <message>
        <source>accept() → fd {0}: a new thread will serve it</source>
        <translation>accept() → fd {0}：将由一个新线程为它服务</translation>
    </message>
    <message>
        <source>blocked in recv(): waiting for the client</source>
        <translation>阻塞在 recv() 中：等待客户端</translation>
    </message>
    <message>
        <source>started ({0})</source>
        <translation>已启动（{0}）</translation>
    </message>
    <message>
        <source>started for fd {0}</source>
        <translation>为 fd {0} 启动</translation>
    </message>
    <message>
        <source>the client closed: closing</source>
        <translation>客户端已关闭：正在关闭</translation>
    </message>
    <message>
        <source>read {0} bytes</source>
        <translation>读到 {0} 字节</translation>
    </message>
    <message>
        <source>blocked in recv(): the request is not complete yet (last read {0} bytes)</source>
        <translation>阻塞在 recv()：请求还不完整（上次读到 {0} 字节）</translation>
    </message>
    <message>
        <source>answering {0}</source>
        <translation>正在响应 {0}</translation>
    </message>
    <message>
        <source>answer {0} made: sending it</source>
        <translation>已生成响应 {0}：正在发送</translation>
    </message>
    <message>
        <source>blocked in send(): the client&apos;s window is full</source>
        <translation>阻塞在 send() 中：客户端的窗口已满</translation>
    </message>
    <message>
        <source>send() {0} bytes</source>
        <translation>send() {0} 字节</translation>
    </message>
    <message>
        <source>blocked in recv(): waiting for the next request</source>
        <translation>阻塞在 recv() 中：等待下一个请求</translation>
    </message>
    <message>
        <source>closing the connection</source>
        <translation>正在关闭连接</translation>
    </message>
    <message>
        <source>held before {0} (stepping)</source>
        <translation>在 {0} 之前暂停（单步执行）</translation>
    </message>
    <message>
        <source>error: {0}</source>
        <translation>错误：{0}</translation>
    </message>
    <message>
        <source>parent</source>
        <translation>父进程</translation>
    </message>
    <message>
        <source>pid {0}</source>
        <translation>pid {0}</translation>
    </message>
    <message>
        <source>accept() → fd {0}: fork() a child for it</source>
        <translation>accept() → fd {0}：为它 fork() 一个子进程</translation>
    </message>
    <message>
        <source>fork() → child {0}: fd {1} now in both processes</source>
        <translation>fork() → 子进程 {0}：现在两个进程里都有 fd {1}</translation>
    </message>
    <message>
        <source>close(fd {0}): the parent&apos;s copy; the child&apos;s is the last one, no FIN yet</source>
        <translation>close(fd {0})：关掉的是父进程那份；子进程那份是最后一个，还不发 FIN</translation>
    </message>
    <message>
        <source>close(fd {0}): the last copy: the kernel sends FIN</source>
        <translation>close(fd {0})：最后一份：内核发出 FIN</translation>
    </message>
    <message>
        <source>reaped child {0} (exit status {1})</source>
        <translation>回收了子进程 {0}（退出状态 {1}）</translation>
    </message>
    <message>
        <source>holds the copy of a connected socket it never closes: its FIN cannot leave</source>
        <translation>拿着一个已连接套接字的副本，从不关闭：它的 FIN 发不出去</translation>
    </message>
    <message>
        <source>holds {0} copies of connected sockets it never closes: their FIN cannot leave</source>
        <translation>拿着 {0} 个已连接套接字的副本，从不关闭：它们的 FIN 发不出去</translation>
    </message>
    <message>
        <source>forked: waiting for the parent to settle its copy</source>
        <translation>已 fork：等父进程处理完它的那份副本</translation>
    </message>
    <message>
        <source>child {0}</source>
        <translation>子进程 {0}</translation>
    </message>
    <message>
        <source>parent&apos;s copy: open</source>
        <translation>父进程的副本：打开</translation>
    </message>
    <message>
        <source>parent&apos;s copy: closed</source>
        <translation>父进程的副本：已关闭</translation>
    </message>
    <message>
        <source>close(fd {0}): the last copy: FIN</source>
        <translation>close(fd {0})：最后一份：FIN</translation>
    </message>
    <message>
        <source>close(fd {0}): not the last copy (the parent holds one): no FIN</source>
        <translation>close(fd {0})：不是最后一份（父进程还拿着一份）：没有 FIN</translation>
    </message>
    <message>
        <source>hub</source>
        <translation>hub</translation>
    </message>
    <message>
        <source>event loop</source>
        <translation>事件循环</translation>
    </message>
    <message>
        <source>over {0}</source>
        <translation>基于 {0}</translation>
    </message>
    <message>
        <source>back from {0}.select(): {1} fd(s) ready</source>
        <translation>从 {0}.select() 返回：{1} 个 fd 就绪</translation>
    </message>
    <message>
        <source>accepted fd {0}: a new coroutine will serve it</source>
        <translation>已 accept fd {0}：将由一个新协程为它服务</translation>
    </message>
    <message>
        <source>a callback read {0} bytes of fd {1} for its stream</source>
        <translation>一个回调替它的流从 fd {1} 读了 {0} 字节</translation>
    </message>
    <message>
        <source>a callback sent {0} more bytes of fd {1}</source>
        <translation>一个回调在 fd {1} 上又发送了 {0} 字节</translation>
    </message>
    <message>
        <source>runs: the next ready one, or waits when none is</source>
        <translation>运行中：下一个就绪的，没有就等待</translation>
    </message>
    <message>
        <source>waiting for the running coroutine to give way</source>
        <translation>等正在运行的协程让出</translation>
    </message>
    <message>
        <source>runs now: {0}</source>
        <translation>正在运行：{0}</translation>
    </message>
    <message>
        <source>{0}() → EAGAIN</source>
        <translation>{0}() → EAGAIN</translation>
    </message>
    <message>
        <source>parked: {0}() said EAGAIN; the loop&apos;s epoll watches fd {1}</source>
        <translation>挂起：{0}() 返回 EAGAIN；循环的 epoll 监视着 fd {1}</translation>
    </message>
    <message>
        <source>the loop read {0} bytes for it: it runs when its turn comes</source>
        <translation>循环替它读了 {0} 字节：轮到它时才运行</translation>
    </message>
    <message>
        <source>the loop read the client&apos;s FIN: it runs when its turn comes</source>
        <translation>循环读到了客户端的 FIN：轮到它时才运行</translation>
    </message>
    <message>
        <source>awaiting drain(): the socket took part; the loop sends the rest when fd {0} is writable</source>
        <translation>在 drain() 中等待：套接字只收下了一部分；fd {0} 可写时由循环发送其余部分</translation>
    </message>
    <message>
        <source>parked</source>
        <translation>挂起</translation>
    </message>
    <message>
        <source>awaiting reader.read(): the selector watches fd {0}</source>
        <translation>在 reader.read() 中等待：选择器监视着 fd {0}</translation>
    </message>
    <message>
        <source>(still counting: {0} sweeps read so far)</source>
        <translation>（仍在统计：目前已读取 {0} 轮扫描）</translation>
    </message>
    <message>
        <source>{0:.1f} wasted tries for every useful one</source>
        <translation>每 1 次有效尝试，就有 {0:.1f} 次白费</translation>
    </message>
    <message>
        <source>{0:,.0f} wasted tries for every useful one</source>
        <translation>每 1 次有效尝试，就有 {0:,.0f} 次白费</translation>
    </message>
    <message>
        <source>no useful try yet</source>
        <translation>还没有一次有效尝试</translation>
    </message>
    <message>
        <source>{0} B unread</source>
        <translation>{0} B 未读</translation>
    </message>
    <message>
        <source>{0} B unread (observed)</source>
        <translation>{0} B 未读（观测）</translation>
    </message>
    <message>
        <source>{0} B unread (derived)</source>
        <translation>{0} B 未读（推导）</translation>
    </message>
    <message>
        <source>B unread: observed by the kernel (Recv-Q)</source>
        <translation>B 未读：内核观测到的（Recv-Q）</translation>
    </message>
    <message>
        <source>B unread: derived from the segments and the reads</source>
        <translation>B 未读：由报文段和读取推导</translation>
    </message>
    <message>
        <source>B unread: observed or derived, as each says</source>
        <translation>B 未读：观测或推导，各自标明</translation>
    </message>
    <message>
        <source>Accept queue: not observed yet since the server started listening</source>
        <translation>accept 队列：服务器开始监听后还未观测到</translation>
    </message>
    <message>
        <source>Accept queue: backlog {0}: Linux queues up to {1}; not observed since the last accept()</source>
        <translation>accept 队列：backlog {0}：Linux 最多排队 {1} 个；上次 accept() 之后未再观测</translation>
    </message>
    <message>
        <source>Accept queue: not observed since the last accept()</source>
        <translation>accept 队列：上次 accept() 之后未再观测</translation>
    </message>
    <message>
        <source>Accept queue: {0} waiting, as last observed · backlog {1}: Linux queues up to {2}</source>
        <translation>accept 队列：{0} 个在等待（最近一次观测）· backlog {1}：Linux 最多排队 {2} 个</translation>
    </message>
    <message>
        <source>Accept queue: {0} waiting · backlog {1}: Linux queues up to {2}</source>
        <translation>accept 队列：{0} 个在等待 · backlog {1}：Linux 最多排队 {2} 个</translation>
    </message>
    <message>
        <source>Accept queue: {0} waiting, as last observed</source>
        <translation>accept 队列：{0} 个在等待（最近一次观测）</translation>
    </message>
    <message>
        <source>Accept queue: {0} waiting</source>
        <translation>accept 队列：{0} 个在等待</translation>
    </message>
    <message>
        <source>Interest list: {0} fds registered</source>
        <translation>关注列表：已注册 {0} 个 fd</translation>
    </message>
    <message>
        <source>added by epoll_ctl; the mask is what to watch</source>
        <translation>由 epoll_ctl 添加；掩码表示要监视的事件</translation>
    </message>
    <message>
        <source>Watched set: {0} fds</source>
        <translation>监视集合：{0} 个 fd</translation>
    </message>
    <message>
        <source>kept by the program, handed to the kernel on every call</source>
        <translation>由程序保存，每次调用都交给内核</translation>
    </message>
    <message>
        <source>registered with the selector; the mask is what to watch</source>
        <translation>注册在 selector 里；掩码表示要监视的事件</translation>
    </message>
    <message>
        <source>{0} #{1}: scanned {2} fds, {3} ready</source>
        <translation>第 {1} 次 {0}：扫描了 {2} 个 fd，{3} 个就绪</translation>
    </message>
    <message>
        <source>Ready list: {0} #{1} returned {2}</source>
        <translation>就绪列表：第 {1} 次 {0} 返回了 {2} 个</translation>
    </message>
    <message>
        <source>Ready list: no {0} yet</source>
        <translation>就绪列表：还没有调用 {0}</translation>
    </message>
    <message>
        <source>the server handles them in order, then waits again</source>
        <translation>服务器按顺序处理它们，然后再次等待</translation>
    </message>
    <message>
        <source>listen</source>
        <translation>监听</translation>
    </message>
    <message>
        <source>wake</source>
        <translation>唤醒</translation>
    </message>
    <message>
        <source>The last {0:,} sweeps: tries per sweep</source>
        <translation>最近 {0:,} 轮扫描：每轮的尝试次数</translation>
    </message>
    <message>
        <source> (a pale bar ×N: N idle sweeps in a row)</source>
        <translation>（浅色柱 ×N：连续 N 轮空闲扫描）</translation>
    </message>
    <message>
        <source>again</source>
        <translation>再次</translation>
    </message>
    <message>
        <source>◀ now</source>
        <translation>◀ 当前</translation>
    </message>
    <message>
        <source>✓ done</source>
        <translation>✓ 已处理</translation>
    </message>
    <message>
        <source>next</source>
        <translation>待处理</translation>
    </message>
    <message>
        <source>… {0} more in this ready list</source>
        <translation>…… 这个就绪列表里还有 {0} 个</translation>
    </message>
    <message>
        <source>the wait before reported: {0}</source>
        <translation>上一次 wait 报告的：{0}</translation>
    </message>
    <message>
        <source>nothing</source>
        <translation>无</translation>
    </message>
    <message>
        <source>= reported by the wait before too</source>
        <translation>= 上一次 wait 也报告过它</translation>
    </message>
    <message>
        <source>= reported by the wait before too: new data came</source>
        <translation>= 上一次 wait 也报告过它：又来了新数据</translation>
    </message>
    <message>
        <source>Accept queue: not observed (the kernel observer is off)</source>
        <translation>全连接队列（accept 队列）：未观测（内核观测已关闭）</translation>
    </message>
    <message>
        <source>1 child process</source>
        <translation>1 个子进程</translation>
    </message>
    <message>
        <source>{0} child processes</source>
        <translation>{0} 个子进程</translation>
    </message>
    <message>
        <source>No process yet</source>
        <translation>还没有进程</translation>
    </message>
    <message>
        <source>{0} greenlets on one OS thread</source>
        <translation>{0} 个 greenlet，在一个操作系统线程上</translation>
    </message>
    <message>
        <source>{0} tasks on one OS thread</source>
        <translation>{0} 个任务，在一个操作系统线程上</translation>
    </message>
    <message>
        <source>No loop yet</source>
        <translation>还没有循环</translation>
    </message>
    <message>
        <source>{0} threads</source>
        <translation>{0} 个线程</translation>
    </message>
    <message>
        <source>No thread yet</source>
        <translation>还没有线程</translation>
    </message>
    <message>
        <source>blocked in recv()</source>
        <translation>阻塞在 recv()</translation>
    </message>
    <message>
        <source>answering</source>
        <translation>正在响应</translation>
    </message>
    <message>
        <source>sending</source>
        <translation>正在发送</translation>
    </message>
    <message>
        <source>closing</source>
        <translation>正在关闭</translation>
    </message>
    <message>
        <source>held</source>
        <translation>已暂停</translation>
    </message>
    <message>
        <source>error</source>
        <translation>出错</translation>
    </message>
    <message>
        <source>starting</source>
        <translation>正在启动</translation>
    </message>
    <message>
        <source>accepting</source>
        <translation>正在 accept</translation>
    </message>
    <message>
        <source>{0} more threads:</source>
        <translation>另外 {0} 个线程：</translation>
    </message>
    <message>
        <source>main thread</source>
        <translation>主线程</translation>
    </message>
    <message>
        <source>thread {0}</source>
        <translation>线程 {0}</translation>
    </message>
    <message>
        <source>accept loop</source>
        <translation>accept 循环</translation>
    </message>
    <message>
        <source>fd {0}</source>
        <translation>fd {0}</translation>
    </message>
    <message>
        <source>back from {0} (slept {1} ms): waking the ready ones</source>
        <translation>从 {0} 返回（睡了 {1} 毫秒）：唤醒就绪的</translation>
    </message>
    <message>
        <source>one square per fd</source>
        <translation>每个 fd 一个方块</translation>
    </message>
    <message>
        <source>red: also OUT, a send waits</source>
        <translation>红色：还有 OUT，有发送在等待</translation>
    </message>
    <message>
        <source>green: handled now</source>
        <translation>绿色：正在处理</translation>
    </message>
    <message>
        <source>blue: bytes unread</source>
        <translation>蓝色：有未读的字节</translation>
    </message>
    <message>
        <source>one square per fd: the first {0:,} of {1:,}</source>
        <translation>每个 fd 一个方块：{1:,} 个中的前 {0:,} 个</translation>
    </message>
    <message>
        <source>{0} more children:</source>
        <translation>另外 {0} 个子进程：</translation>
    </message>
    <message>
        <source>{0} more greenlets:</source>
        <translation>另外 {0} 个 greenlet：</translation>
    </message>
    <message>
        <source>{0} more tasks:</source>
        <translation>另外 {0} 个任务：</translation>
    </message>
    <message>
        <source>last: {0}</source>
        <translation>上一步：{0}</translation>
    </message>
    <message>
        <source>So far ({0:,} sweeps)</source>
        <translation>迄今为止（共 {0:,} 轮扫描）</translation>
    </message>
    <message>
        <source>of the tries were wasted (EAGAIN)</source>
        <translation>的尝试白费了（EAGAIN）</translation>
    </message>
    <message>
        <source>wasted (EAGAIN)</source>
        <translation>白费（EAGAIN）</translation>
    </message>
    <message>
        <source>useful</source>
        <translation>有效</translation>
    </message>
    <message>
        <source>no sweep yet</source>
        <translation>还没有扫描</translation>
    </message>
    <message>
        <source>Sweeps #{0:,}–#{1:,}: {2:,} idle sweeps in {3} ms, every try EAGAIN</source>
        <translation>第 {0:,}–{1:,} 轮：{3} 毫秒内 {2:,} 轮空闲扫描，每次尝试都是 EAGAIN</translation>
    </message>
    <message>
        <source>Sweep #{0}: tried {1} of {2} sockets</source>
        <translation>第 {0} 轮扫描：已尝试 {2} 个套接字中的 {1} 个</translation>
    </message>
    <message>
        <source>Sweep #{0}: tried {1} sockets, {2} useful</source>
        <translation>第 {0} 轮扫描：尝试了 {1} 个套接字，{2} 个有效</translation>
    </message>
    <message>
        <source>No sweep yet</source>
        <translation>还没有扫描</translation>
    </message>
    <message>
        <source>useful: data moved or accepted</source>
        <translation>有效：收发了数据或 accept 了连接</translation>
    </message>
    <message>
        <source>EAGAIN: nothing there</source>
        <translation>EAGAIN：什么也没有</translation>
    </message>
    <message>
        <source>not tried yet</source>
        <translation>还没尝试</translation>
    </message>
    <message>
        <source>tallest: {0} tries · newest on the right</source>
        <translation>最高：{0} 次尝试 · 最新的在右边</translation>
    </message>
</context>
<context>
    <name>LifecycleView</name>
    <message>
        <source>captured</source>
        <translation>抓包</translation>
    </message>
    <message>
        <source>derived</source>
        <translation>推导</translation>
    </message>
    <message>
        <source>No connection yet at this point of the timeline</source>
        <translation>时间线上的这一刻还没有连接</translation>
    </message>
    <message>
        <source>port</source>
        <translation>端口</translation>
    </message>
    <message>
        <source>open</source>
        <translation>打开</translation>
    </message>
    <message>
        <source>⚠ the capture lost {0} frames here: bars may miss segments</source>
        <translation>⚠ 抓包在这里丢失了 {0} 帧：这些条可能缺少报文段</translation>
    </message>
    <message>
        <source>⚠ the capture lost {0} frames here</source>
        <translation>⚠ 抓包在这里丢失了 {0} 帧</translation>
    </message>
    <message>
        <source>⚠ {0} frames lost</source>
        <translation>⚠ 丢失 {0} 帧</translation>
    </message>
    <message>
        <source>closing: client above, server below</source>
        <translation>关闭中：上为客户端，下为服务器</translation>
    </message>
    <message>
        <source>TIME_WAIT</source>
        <translation>TIME_WAIT</translation>
    </message>
    <message>
        <source>request</source>
        <translation>请求</translation>
    </message>
    <message>
        <source>cursor: {0} after the first event</source>
        <translation>游标：第一个事件之后 {0}</translation>
    </message>
    <message>
        <source>cursor: {0}</source>
        <translation>游标：{0}</translation>
    </message>
    <message>
        <source>Short connections</source>
        <translation>短连接</translation>
    </message>
    <message>
        <source>Keep-alive connections</source>
        <translation>长连接（keep-alive）</translation>
    </message>
    <message>
        <source>one request each, then closed</source>
        <translation>每个连接一个请求，然后关闭</translation>
    </message>
    <message>
        <source>several requests on one connection</source>
        <translation>一个连接上发多个请求</translation>
    </message>
    <message>
        <source>+{0} earlier connection, not drawn (counted in the costs)</source>
        <translation>另有 {0} 个更早的连接，未画出（已计入开销）</translation>
    </message>
    <message>
        <source>+{0} earlier connections, not drawn (counted in the costs)</source>
        <translation>另有 {0} 个更早的连接未画出（已计入开销）</translation>
    </message>
    <message>
        <source>+{0} earlier, not drawn</source>
        <translation>另有 {0} 个更早的，未画出</translation>
    </message>
    <message>
        <source>none yet</source>
        <translation>暂无</translation>
    </message>
    <message>
        <source>both ends</source>
        <translation>两端</translation>
    </message>
    <message>
        <source>server</source>
        <translation>服务器</translation>
    </message>
    <message>
        <source>client</source>
        <translation>客户端</translation>
    </message>
    <message>
        <source>{0} in TIME_WAIT, {1} left</source>
        <translation>{0}处于 TIME_WAIT，剩余 {1}</translation>
    </message>
    <message>
        <source>{0}, {1} left</source>
        <translation>{0}，剩余 {1}</translation>
    </message>
    <message>
        <source>3 each, assumed</source>
        <translation>按每个 3 个估算</translation>
    </message>
    <message>
        <source>partly assumed</source>
        <translation>部分为估算</translation>
    </message>
    <message>
        <source>connections opened</source>
        <translation>打开的连接数</translation>
    </message>
    <message>
        <source>requests</source>
        <translation>请求数</translation>
    </message>
    <message>
        <source>handshake segments</source>
        <translation>握手报文段</translation>
    </message>
    <message>
        <source>  per request</source>
        <translation>  平均每个请求</translation>
    </message>
    <message>
        <source>first open → now (still open)</source>
        <translation>首次打开 → 现在（仍打开）</translation>
    </message>
    <message>
        <source>first open → last close</source>
        <translation>首次打开 → 最后关闭</translation>
    </message>
    <message>
        <source>TIME_WAIT sockets now</source>
        <translation>当前 TIME_WAIT 套接字</translation>
    </message>
    <message>
        <source>{0} connection</source>
        <translation>{0} 个连接</translation>
    </message>
    <message>
        <source>{0} connections</source>
        <translation>{0} 个连接</translation>
    </message>
    <message>
        <source>{0} request</source>
        <translation>{0} 个请求</translation>
    </message>
    <message>
        <source>{0} requests</source>
        <translation>{0} 个请求</translation>
    </message>
    <message>
        <source>{0} handshake segment</source>
        <translation>{0} 个握手报文段</translation>
    </message>
    <message>
        <source>{0} handshake segments</source>
        <translation>{0} 个握手报文段</translation>
    </message>
    <message>
        <source>, {0} per request</source>
        <translation>，平均每个请求 {0} 个</translation>
    </message>
    <message>
        <source>{0} in TIME_WAIT</source>
        <translation>{0} 个处于 TIME_WAIT</translation>
    </message>
    <message>
        <source>{0} skipped</source>
        <translation>跳过 {0}</translation>
    </message>
    <message>
        <source>+{0}</source>
        <translation>+{0}</translation>
    </message>
    <message>
        <source>Handshake segments per request: short {0}, keep-alive {1}.  Keep-alive pays the handshake once.</source>
        <translation>每个请求的握手报文段：短连接 {0}，长连接 {1}。  长连接只需握手一次。</translation>
    </message>
    <message>
        <source>Keep-alive pays the handshake once; short connections pay it for every request.</source>
        <translation>长连接只需握手一次；短连接每个请求都要握手一次。</translation>
    </message>
    <message>
        <source>Keep-alive pays the handshake once.</source>
        <translation>长连接只需握手一次。</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>epoll (level)</source>
        <translation>epoll（水平触发）</translation>
    </message>
    <message>
        <source>epoll (edge)</source>
        <translation>epoll（边缘触发）</translation>
    </message>
    <message>
        <source>selectors</source>
        <translation>selectors</translation>
    </message>
    <message>
        <source>threaded</source>
        <translation>多线程</translation>
    </message>
    <message>
        <source>one client at a time</source>
        <translation>一次一个客户端</translation>
    </message>
    <message>
        <source>a process per connection</source>
        <translation>每个连接一个进程</translation>
    </message>
    <message>
        <source>gevent</source>
        <translation>gevent</translation>
    </message>
    <message>
        <source>non-blocking polling</source>
        <translation>非阻塞轮询</translation>
    </message>
    <message>
        <source>select</source>
        <translation>select</translation>
    </message>
    <message>
        <source>poll</source>
        <translation>poll</translation>
    </message>
    <message>
        <source>asyncio</source>
        <translation>asyncio</translation>
    </message>
    <message>
        <source>1 event/s</source>
        <translation>1 个事件/秒</translation>
    </message>
    <message>
        <source>5 events/s</source>
        <translation>5 个事件/秒</translation>
    </message>
    <message>
        <source>20 events/s</source>
        <translation>20 个事件/秒</translation>
    </message>
    <message>
        <source>One request</source>
        <translation>单个请求</translation>
    </message>
    <message>
        <source>Short</source>
        <translation>短连接</translation>
    </message>
    <message>
        <source>Keep-alive</source>
        <translation>长连接</translation>
    </message>
    <message>
        <source>Pipelined</source>
        <translation>管线化</translation>
    </message>
    <message>
        <source>Aborting</source>
        <translation>异常中止</translation>
    </message>
    <message>
        <source>Half-closing</source>
        <translation>半关闭</translation>
    </message>
    <message>
        <source>Slow</source>
        <translation>慢速客户端</translation>
    </message>
    <message>
        <source>the client&apos;s SYN is lost: it retransmits after about 1 s (SYN_SENT meanwhile)</source>
        <translation>客户端的 SYN 丢失：约 1 秒后重传（其间处于 SYN_SENT）</translation>
    </message>
    <message>
        <source>the server&apos;s SYN-ACK is lost: the server retransmits it (SYN_RECV meanwhile)</source>
        <translation>服务器的 SYN-ACK 丢失：服务器重传它（其间处于 SYN_RECV）</translation>
    </message>
    <message>
        <source>the handshake&apos;s final ACK is lost: the client is ESTABLISHED, the server still SYN_RECV until the client&apos;s data (or the SYN-ACK retransmission) fixes it</source>
        <translation>握手的最后一个 ACK 丢失：客户端已是 ESTABLISHED，服务器仍停在 SYN_RECV，直到客户端的数据（或 SYN-ACK 的重传）把它纠正过来</translation>
    </message>
    <message>
        <source>the client&apos;s FIN is lost: it retransmits it; the server reads end-of-file late</source>
        <translation>客户端的 FIN 丢失：客户端重传它；服务器读到文件结束（EOF）的时间推迟</translation>
    </message>
    <message>
        <source>the server&apos;s FIN is lost: it stays in FIN_WAIT_1 and retransmits</source>
        <translation>服务器的 FIN 丢失：服务器停在 FIN_WAIT_1 并重传</translation>
    </message>
    <message>
        <source>Replaying a recorded trace</source>
        <translation>正在回放录制的跟踪记录</translation>
    </message>
    <message>
        <source>&amp;File</source>
        <translation>文件(&amp;F)</translation>
    </message>
    <message>
        <source>&amp;Open trace…</source>
        <translation>打开跟踪记录(&amp;O)…</translation>
    </message>
    <message>
        <source>&amp;Save session as trace…</source>
        <translation>将会话保存为跟踪记录(&amp;S)…</translation>
    </message>
    <message>
        <source>&amp;Export view as picture…</source>
        <translation>将视图导出为图片(&amp;E)…</translation>
    </message>
    <message>
        <source>&amp;Compare modes side by side…</source>
        <translation>并排对比各种模式(&amp;C)…</translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation>退出(&amp;Q)</translation>
    </message>
    <message>
        <source>Open &amp;lesson file…</source>
        <translation>打开课程文件(&amp;L)…</translation>
    </message>
    <message>
        <source>&amp;Attach to an engine…</source>
        <translation>连接到引擎(&amp;A)…</translation>
    </message>
    <message>
        <source>&amp;Detach (back to the local engine)</source>
        <translation>断开(&amp;D)（回到本机引擎）</translation>
    </message>
    <message>
        <source>L&amp;essons</source>
        <translation>课程(&amp;E)</translation>
    </message>
    <message>
        <source>Back to the live server</source>
        <translation>回到实时服务器</translation>
    </message>
    <message>
        <source>&amp;Language</source>
        <translation>语言/Language(&amp;L)</translation>
    </message>
    <message>
        <source>Engine</source>
        <translation>引擎</translation>
    </message>
    <message>
        <source>backlog </source>
        <translation>backlog </translation>
    </message>
    <message>
        <source>sweep pause </source>
        <translation>扫描间隔 </translation>
    </message>
    <message>
        <source>Lab</source>
        <translation>实验网络</translation>
    </message>
    <message>
        <source>A private network namespace: real packets captured without root; only SockScope&apos;s own clients reach it</source>
        <translation>独立的网络命名空间：无需 root 即可抓取真实的数据包；只有 SockScope 自己的客户端能访问它</translation>
    </message>
    <message>
        <source>The lab is not available: {0}</source>
        <translation>实验网络不可用：{0}</translation>
    </message>
    <message>
        <source>no fault</source>
        <translation>无故障</translation>
    </message>
    <message>
        <source>In the lab, drop one segment</source>
        <translation>在实验网络中丢弃一个报文段</translation>
    </message>
    <message>
        <source>Apply (restart engine)</source>
        <translation>应用（重启引擎）</translation>
    </message>
    <message>
        <source>Open in browser</source>
        <translation>在浏览器中打开</translation>
    </message>
    <message>
        <source>Traffic</source>
        <translation>流量</translation>
    </message>
    <message>
        <source>clients </source>
        <translation>客户端 </translation>
    </message>
    <message>
        <source>Restart engine</source>
        <translation>重启引擎</translation>
    </message>
    <message>
        <source>ports</source>
        <translation>端口</translation>
    </message>
    <message>
        <source>client</source>
        <translation>客户端</translation>
    </message>
    <message>
        <source>server</source>
        <translation>服务器</translation>
    </message>
    <message>
        <source>requests</source>
        <translation>请求数</translation>
    </message>
    <message>
        <source>packets</source>
        <translation>数据包</translation>
    </message>
    <message>
        <source>words: GET, 404, 54321…</source>
        <translation>关键词：GET、404、54321…</translation>
    </message>
    <message>
        <source>every kind</source>
        <translation>所有类型</translation>
    </message>
    <message>
        <source>every source</source>
        <translation>所有来源</translation>
    </message>
    <message>
        <source>every fd</source>
        <translation>所有 fd</translation>
    </message>
    <message>
        <source>selected connection only</source>
        <translation>只看选中的连接</translation>
    </message>
    <message>
        <source>Live</source>
        <translation>实时</translation>
    </message>
    <message>
        <source>Play</source>
        <translation>播放</translation>
    </message>
    <message>
        <source>Step back one event (Left, PageUp)</source>
        <translation>后退一个事件（←、PageUp）</translation>
    </message>
    <message>
        <source>Step forward one event (Right, PageDown)</source>
        <translation>前进一个事件（→、PageDown）</translation>
    </message>
    <message>
        <source>Step the server</source>
        <translation>单步执行服务器</translation>
    </message>
    <message>
        <source>Release one action</source>
        <translation>放行一步</translation>
    </message>
    <message>
        <source>epoll is Linux&apos;s; here the selectors mode does its work with what this system has (kqueue on macOS, select on Windows)</source>
        <translation>epoll 是 Linux 特有的；这里由 selectors 模式用本系统已有的机制完成同样的工作（macOS 上是 kqueue，Windows 上是 select）</translation>
    </message>
    <message>
        <source>Port {0} is held by TIME_WAIT sockets and SO_REUSEADDR is off, so bind() would fail: the server moved to port {1}.</source>
        <translation>端口 {0} 被 TIME_WAIT 套接字占着，而 SO_REUSEADDR 已关闭，bind() 会失败：服务器改用端口 {1}。</translation>
    </message>
    <message>
        <source>Port {0} is taken by another program: the server is on port {1}.</source>
        <translation>端口 {0} 已被其他程序占用：服务器改用端口 {1}。</translation>
    </message>
    <message>
        <source>(not started)</source>
        <translation>（未启动）</translation>
    </message>
    <message>
        <source> (in the lab)</source>
        <translation>（在实验网络中）</translation>
    </message>
    <message>
        <source>A browser cannot reach the lab&apos;s private network</source>
        <translation>浏览器进不了实验网络：那是一个独立的私有网络</translation>
    </message>
    <message>
        <source>No engine is running</source>
        <translation>引擎没有在运行</translation>
    </message>
    <message>
        <source>The engine stopped (exit code {0}). Nothing recorded is lost. {1}</source>
        <translation>引擎已停止（退出码 {0}）。已录制的内容都没有丢失。{1}</translation>
    </message>
    <message>
        <source>Cannot open trace</source>
        <translation>无法打开跟踪记录</translation>
    </message>
    <message>
        <source>Opened at its start (End goes to its last event); the rest is worked out while you look</source>
        <translation>已在开头打开（按 End 跳到最后一个事件）；其余部分在您查看时于后台处理</translation>
    </message>
    <message>
        <source>Open trace</source>
        <translation>打开跟踪记录</translation>
    </message>
    <message>
        <source>SockScope traces (*.jsonl);;All files (*)</source>
        <translation>SockScope 跟踪记录 (*.jsonl);;所有文件 (*)</translation>
    </message>
    <message>
        <source>Save session</source>
        <translation>保存会话</translation>
    </message>
    <message>
        <source>SockScope traces (*.jsonl)</source>
        <translation>SockScope 跟踪记录 (*.jsonl)</translation>
    </message>
    <message>
        <source>Cannot save</source>
        <translation>无法保存</translation>
    </message>
    <message>
        <source>Saved {0} events</source>
        <translation>已保存 {0} 个事件</translation>
    </message>
    <message>
        <source>Export view</source>
        <translation>导出视图</translation>
    </message>
    <message>
        <source>PNG picture (*.png);;SVG drawing (*.svg)</source>
        <translation>PNG 图片 (*.png);;SVG 矢量图 (*.svg)</translation>
    </message>
    <message>
        <source>Cannot export</source>
        <translation>无法导出</translation>
    </message>
    <message>
        <source>Wrote {0}</source>
        <translation>已写入 {0}</translation>
    </message>
    <message>
        <source>no connection selected</source>
        <translation>没有选中连接</translation>
    </message>
    <message>
        <source>Open a lesson file</source>
        <translation>打开课程文件</translation>
    </message>
    <message>
        <source>Lesson files (*.toml)</source>
        <translation>课程文件 (*.toml)</translation>
    </message>
    <message>
        <source>The lesson file cannot be used</source>
        <translation>这个课程文件无法使用</translation>
    </message>
    <message>
        <source>Recording the lesson “{0}” on the real server…</source>
        <translation>正在真实服务器上录制课程“{0}”…</translation>
    </message>
    <message>
        <source>The lesson could not run</source>
        <translation>课程无法运行</translation>
    </message>
    <message>
        <source>What the recording ran with (here at the cursor); Lessons → Back to the live server for yours</source>
        <translation>录制时使用的设置（光标所在处）；要用你自己的设置，请选 课程 → 回到实时服务器</translation>
    </message>
    <message>
        <source>Question: {0}</source>
        <translation>问题：{0}</translation>
    </message>
    <message>
        <source>{0} (right)</source>
        <translation>{0}（正确）</translation>
    </message>
    <message>
        <source>Right: {0}</source>
        <translation>答对了：{0}</translation>
    </message>
    <message>
        <source>Not this one: the answer is {0}</source>
        <translation>不对：答案是 {0}</translation>
    </message>
    <message>
        <source>Recorded with: {0}</source>
        <translation>录制时使用：{0}</translation>
    </message>
    <message>
        <source>before the trace</source>
        <translation>记录之前</translation>
    </message>
    <message>
        <source>On the server&apos;s port before the recording began (an earlier connection): the kernel observer found it at its start.</source>
        <translation>录制开始之前就已在服务器的端口上（一个更早的连接）：内核观察者在启动时发现了它。</translation>
    </message>
    <message>
        <source>The non-blocking loop&apos;s pause between sweeps over its sockets (0: a busy loop)</source>
        <translation>非阻塞循环在两次遍历套接字之间的停顿（0：忙等循环）</translation>
    </message>
    <message>
        <source>Only the non-blocking mode sweeps its sockets; this mode waits in the kernel instead</source>
        <translation>只有非阻塞模式会遍历它的套接字；这个模式改为在内核里等待</translation>
    </message>
    <message>
        <source>capture</source>
        <translation>抓包</translation>
    </message>
    <message>
        <source>trace</source>
        <translation>跟踪文件</translation>
    </message>
    <message>
        <source>kernel side</source>
        <translation>内核侧进程</translation>
    </message>
    <message>
        <source>control port</source>
        <translation>控制端口</translation>
    </message>
    <message>
        <source>tracepoint</source>
        <translation>内核跟踪点</translation>
    </message>
    <message>
        <source>derived segments</source>
        <translation>推导的报文段</translation>
    </message>
    <message>
        <source>mode: {0}   URL: {1}   open connections: {2}   events/s: {3:.0f}   dropped: {4}</source>
        <translation>模式：{0}   URL：{1}   打开的连接：{2}   事件/秒：{3:.0f}   丢弃：{4}</translation>
    </message>
    <message>
        <source>this view: redrawn every {0:.1f} s to keep up</source>
        <translation>本视图：为了跟上，每 {0:.1f} 秒重画一次</translation>
    </message>
    <message>
        <source>behind the engine: {0:.1f} s, {1} events waiting, none lost</source>
        <translation>落后于引擎：{0:.1f} 秒，{1} 个事件在等待，无一丢失</translation>
    </message>
    <message>
        <source>behind the engine: {0} events waiting, none lost</source>
        <translation>落后于引擎：{0} 个事件在等待，无一丢失</translation>
    </message>
    <message>
        <source>{0:.1f} s behind</source>
        <translation>落后 {0:.1f} 秒</translation>
    </message>
    <message>
        <source>The picture is the engine&apos;s past: its newest event came {0:.1f} s after the last one the window took. {1} events wait, none lost; the window takes them as fast as it can draw.</source>
        <translation>画面是引擎的过去：它最新的事件比窗口取用的最后一个事件晚 {0:.1f} 秒。{1} 个事件在等待，无一丢失；窗口以它能画的最快速度取用它们。</translation>
    </message>
    <message>
        <source>the disk refused the session&apos;s spill file ({0}): events now kept in memory</source>
        <translation>磁盘拒绝写入会话的溢出文件（{0}）：事件现改存于内存</translation>
    </message>
    <message>
        <source>reading: {0:.0f} % ({1} events)</source>
        <translation>读取中：{0:.0f} %（{1} 个事件）</translation>
    </message>
    <message>
        <source>states worked out: {0:.0f} %</source>
        <translation>状态已计算：{0:.0f} %</translation>
    </message>
</context>
<context>
    <name>MomentBanner</name>
    <message>
        <source>bind() failed: EADDRINUSE: port {0} is still taken</source>
        <translation>bind() 失败：EADDRINUSE：端口 {0} 仍被占用</translation>
    </message>
    <message>
        <source> (SO_REUSEADDR off)</source>
        <translation>（SO_REUSEADDR 关闭）</translation>
    </message>
    <message>
        <source>SYN sent again after {0:.1f} s (try {1}): no SYN|ACK came back</source>
        <translation>{0:.1f} 秒后再次发送 SYN（第 {1} 次）：没有收到 SYN|ACK</translation>
    </message>
    <message>
        <source>The client&apos;s kernel sent its SYN again: no SYN|ACK came back</source>
        <translation>客户端内核再次发送了 SYN：没有收到 SYN|ACK</translation>
    </message>
    <message>
        <source>{0} bytes left unread in fd {1}: edge-triggered epoll will not report them again</source>
        <translation>fd {1} 中还有 {0} 字节未读：边缘触发的 epoll 不会再为它们报告</translation>
    </message>
    <message>
        <source>from the captured packets</source>
        <translation>来自抓到的数据包</translation>
    </message>
    <message>
        <source>the kernel said so (tracepoint)</source>
        <translation>内核如是说（tracepoint）</translation>
    </message>
    <message>
        <source>the kernel said so</source>
        <translation>内核如是说</translation>
    </message>
    <message>
        <source>from the recorded events</source>
        <translation>来自录制的事件</translation>
    </message>
</context>
<context>
    <name>PlotsView</name>
    <message>
        <source>no CPU samples in this trace</source>
        <translation>这份跟踪记录中没有 CPU 采样</translation>
    </message>
    <message>
        <source>accept</source>
        <translation>accept</translation>
    </message>
    <message>
        <source>recv</source>
        <translation>recv</translation>
    </message>
    <message>
        <source>send</source>
        <translation>send</translation>
    </message>
    <message>
        <source>EAGAIN</source>
        <translation>EAGAIN</translation>
    </message>
    <message>
        <source>close</source>
        <translation>close</translation>
    </message>
    <message>
        <source>epoll_ctl</source>
        <translation>epoll_ctl</translation>
    </message>
    <message>
        <source>Server events per fd</source>
        <translation>各 fd 上的服务器事件</translation>
    </message>
    <message>
        <source>Bytes per fd: &lt;span style=&apos;color:{0}&apos;&gt;■ in&lt;/span&gt; &lt;span style=&apos;color:{1}&apos;&gt;■ out&lt;/span&gt;</source>
        <translation>各 fd 的字节数：&lt;span style=&apos;color:{0}&apos;&gt;■ 收&lt;/span&gt; &lt;span style=&apos;color:{1}&apos;&gt;■ 发&lt;/span&gt;</translation>
    </message>
    <message>
        <source>Ready list per wait</source>
        <translation>每次 wait 的就绪列表长度</translation>
    </message>
    <message>
        <source>Connections open</source>
        <translation>打开的连接数</translation>
    </message>
    <message>
        <source>Accept queue</source>
        <translation>accept 队列</translation>
    </message>
    <message>
        <source>Engine CPU %</source>
        <translation>引擎 CPU %</translation>
    </message>
    <message>
        <source>Per-fd plots</source>
        <translation>按 fd 统计的图表</translation>
    </message>
    <message>
        <source>Follow the cursor</source>
        <translation>跟随游标</translation>
    </message>
    <message>
        <source>Show all</source>
        <translation>显示全部</translation>
    </message>
    <message>
        <source>fd</source>
        <translation>fd</translation>
    </message>
    <message>
        <source>time since the first event</source>
        <translation>距第一个事件的时间</translation>
    </message>
    <message>
        <source>time</source>
        <translation>时间</translation>
    </message>
    <message>
        <source>bytes</source>
        <translation>字节</translation>
    </message>
    <message>
        <source>idle sweeps (EAGAIN)</source>
        <translation>空闲扫描（EAGAIN）</translation>
    </message>
    <message>
        <source>no events yet</source>
        <translation>还没有事件</translation>
    </message>
    <message>
        <source>no epoll_wait in {0} mode</source>
        <translation>{0} 模式下没有 epoll_wait</translation>
    </message>
    <message>
        <source>no epoll_wait yet</source>
        <translation>还没有 epoll_wait</translation>
    </message>
    <message>
        <source>no connection yet</source>
        <translation>还没有连接</translation>
    </message>
    <message>
        <source>full: backlog + 1</source>
        <translation>满：backlog + 1</translation>
    </message>
    <message>
        <source>Accept queue (backlog {0})</source>
        <translation>accept 队列（backlog {0}）</translation>
    </message>
    <message>
        <source>no accept-queue samples (kernel states off?)</source>
        <translation>没有 accept 队列采样（内核状态记录关闭了？）</translation>
    </message>
    <message>
        <source>one core</source>
        <translation>一个核</translation>
    </message>
    <message>
        <source>Engine CPU % (median {0})</source>
        <translation>引擎 CPU %（中位数 {0}）</translation>
    </message>
    <message>
        <source>no CPU sample yet</source>
        <translation>还没有 CPU 采样</translation>
    </message>
    <message>
        <source>no server event on an fd yet</source>
        <translation>fd 上还没有服务器事件</translation>
    </message>
    <message>
        <source>no bytes received or sent yet</source>
        <translation>还没有收发任何字节</translation>
    </message>
</context>
<context>
    <name>Pointer</name>
    <message>
        <source>&amp;Laser pointer</source>
        <translation>激光笔(&amp;L)</translation>
    </message>
    <message>
        <source>Pe&amp;n: draw on the picture</source>
        <translation>画笔(&amp;N)：在画面上画</translation>
    </message>
    <message>
        <source>&amp;Clear the drawing</source>
        <translation>清除所画内容(&amp;C)</translation>
    </message>
</context>
<context>
    <name>Presentation</name>
    <message>
        <source>Light</source>
        <translation>浅色</translation>
    </message>
    <message>
        <source>Projector (high contrast)</source>
        <translation>投影仪（高对比度）</translation>
    </message>
    <message>
        <source>Dark</source>
        <translation>深色</translation>
    </message>
    <message>
        <source>&amp;View</source>
        <translation>视图(&amp;V)</translation>
    </message>
    <message>
        <source>&amp;Presentation mode</source>
        <translation>演示模式(&amp;P)</translation>
    </message>
    <message>
        <source>Full screen: one view and the caption. PageDown/PageUp step, B blanks, 1–6 the view, Shift+1–6 a second view beside it, L the laser pointer, D draws (C clears), Esc leaves</source>
        <translation>全屏：一个视图加说明文字。PageDown/PageUp 切换步骤，B 黑屏，1–6 切换视图，Shift+1–6 在旁边再放一个视图，L 激光笔，D 画笔（C 清除），Esc 退出</translation>
    </message>
    <message>
        <source>Second &amp;view when presenting</source>
        <translation>演示时的第二个视图(&amp;V)</translation>
    </message>
    <message>
        <source>none</source>
        <translation>无</translation>
    </message>
    <message>
        <source>&amp;Theme</source>
        <translation>主题(&amp;T)</translation>
    </message>
    <message>
        <source>&amp;Zoom</source>
        <translation>缩放(&amp;Z)</translation>
    </message>
    <message>
        <source>Zoom &amp;in</source>
        <translation>放大(&amp;I)</translation>
    </message>
    <message>
        <source>Zoom &amp;out</source>
        <translation>缩小(&amp;O)</translation>
    </message>
    <message>
        <source>&amp;Actual size (100 %)</source>
        <translation>实际大小(&amp;A)（100 %）</translation>
    </message>
</context>
<context>
    <name>SequenceView</name>
    <message>
        <source>captured</source>
        <translation>抓包</translation>
    </message>
    <message>
        <source>derived</source>
        <translation>推导</translation>
    </message>
    <message>
        <source>observed</source>
        <translation>观测</translation>
    </message>
    <message>
        <source>inferred</source>
        <translation>推断</translation>
    </message>
    <message>
        <source>traced</source>
        <translation>跟踪</translation>
    </message>
    <message>
        <source>No TCP segments yet. Run some traffic, or open a trace recorded with packets.</source>
        <translation>还没有 TCP 报文段。发一些流量，或打开一份带数据包的跟踪记录。</translation>
    </message>
    <message>
        <source>Connection {0} → {1}</source>
        <translation>连接 {0} → {1}</translation>
    </message>
    <message>
        <source> (numbers relative: ISN unknown)</source>
        <translation>（序号为相对值：ISN 未知）</translation>
    </message>
    <message>
        <source>packets: {0}</source>
        <translation>数据包：{0}</translation>
    </message>
    <message>
        <source>This socket was on the server&apos;s port before the recording began (an earlier connection): its segments came before the trace.</source>
        <translation>录制开始之前，这个套接字就已在服务器的端口上（一个更早的连接）：它的报文段在本次记录之前。</translation>
    </message>
    <message>
        <source>No segments of this connection yet at this moment.</source>
        <translation>此刻这个连接还没有报文段。</translation>
    </message>
    <message>
        <source>, checked: {0}</source>
        <translation>，核对：{0}</translation>
    </message>
    <message>
        <source>none yet</source>
        <translation>暂无</translation>
    </message>
    <message>
        <source>not recorded</source>
        <translation>未录制</translation>
    </message>
    <message>
        <source>states: {0}</source>
        <translation>状态：{0}</translation>
    </message>
    <message>
        <source>⚠ the capture lost {0} frames meanwhile: this connection may miss some</source>
        <translation>⚠ 抓包期间丢失了 {0} 帧：这个连接可能缺少一些报文段</translation>
    </message>
    <message>
        <source>The capture lost frames at {0}: what this connection did then is not drawn.</source>
        <translation>抓包在 {0} 丢失了帧：这个连接在那段时间里做了什么，图中没有画出。</translation>
    </message>
    <message>
        <source>The capture lost frames for {0} ms up to this connection&apos;s first segment drawn: an earlier try of it (a SYN sent again) may be missing.</source>
        <translation>在这条连接画出的第一个报文段之前，抓包丢失了 {0} ms 的帧：它更早的一次尝试（重发前的 SYN）可能没有画出。</translation>
    </message>
    <message>
        <source>state not reported</source>
        <translation>状态未上报</translation>
    </message>
    <message>
        <source>client</source>
        <translation>客户端</translation>
    </message>
    <message>
        <source>server</source>
        <translation>服务器</translation>
    </message>
    <message>
        <source>RST: the {0} reset the connection. No FIN exchange: both ends drop it at once, and no TIME_WAIT follows.</source>
        <translation>RST：{0}重置了连接。没有 FIN 交换：两端立即丢弃这个连接，之后也没有 TIME_WAIT。</translation>
    </message>
    <message>
        <source>The kernel&apos;s reason (traced): {0}.</source>
        <translation>内核给出的原因（跟踪所得）：{0}。</translation>
    </message>
    <message>
        <source>Three segments, not four: the {1}&apos;s FIN rode on the ACK of the {0}&apos;s FIN. Linux delays that ACK (delayed ACK); the {1} closed in the meantime, so one FIN|ACK did both jobs.</source>
        <translation>是三个报文段，不是四个：{1}的 FIN 和它对{0} FIN 的 ACK 合在了同一个报文段里。Linux 会推迟发送这个 ACK（延迟确认），{1}恰好在此期间关闭，于是一个 FIN|ACK 同时完成了两件事。</translation>
    </message>
    <message>
        <source>Simultaneous close: both sides sent a FIN before receiving the other&apos;s.</source>
        <translation>同时关闭：双方都在收到对方的 FIN 之前发出了自己的 FIN。</translation>
    </message>
    <message>
        <source>Half-close: after the {0}&apos;s FIN the {1} went on sending data (which acknowledged the FIN), and sent its own FIN when it closed.</source>
        <translation>半关闭：{0}发出 FIN 之后，{1}继续发送数据（数据中确认了那个 FIN），等到它关闭时才发出自己的 FIN。</translation>
    </message>
    <message>
        <source>Four segments: the {1} acknowledged the {0}&apos;s FIN at once, and sent its own FIN later, when it closed.</source>
        <translation>四个报文段：{1}立即确认了{0}的 FIN，之后在关闭时才发出自己的 FIN。</translation>
    </message>
    <message>
        <source>Half-closed: the {0} has sent its FIN and the {1} acknowledged it; the {1} may still send until it closes.</source>
        <translation>半关闭状态：{0}已发出 FIN，{1}已确认；在{1}关闭之前，它仍然可以发送数据。</translation>
    </message>
    <message>
        <source>… {0} more segments ({1} with data, {2}; among them {3}) …</source>
        <translation>……另有 {0} 个报文段（{1} 个带数据，{2}；其中有 {3}）……</translation>
    </message>
    <message>
        <source>… {0} more segments ({1} with data, {2}) …</source>
        <translation>…… 另有 {0} 个报文段（{1} 个带数据，共 {2}）……</translation>
    </message>
    <message>
        <source>via {0}</source>
        <translation>经过 {0}</translation>
    </message>
    <message>
        <source>Relative seq/ack</source>
        <translation>相对 seq/ack</translation>
    </message>
    <message>
        <source>On: sequence and acknowledgement numbers counted from each side&apos;s initial sequence number (ISN), as Wireshark shows them. Off: the 32-bit numbers on the wire.</source>
        <translation>勾选：序号和确认号从各自的初始序号（ISN）算起，与 Wireshark 的显示一致。不勾选：线路上实际的 32 位数值。</translation>
    </message>
    <message>
        <source>(selected)</source>
        <translation>（已选中）</translation>
    </message>
    <message>
        <source>(live: being retold)</source>
        <translation>（实时：正在重放）</translation>
    </message>
    <message>
        <source>(newest)</source>
        <translation>（最新）</translation>
    </message>
    <message>
        <source>Client</source>
        <translation>客户端</translation>
    </message>
    <message>
        <source>Server</source>
        <translation>服务器</translation>
    </message>
    <message>
        <source>ms</source>
        <translation>ms</translation>
    </message>
    <message>
        <source>✗ dropped by the lab&apos;s rule ({0})</source>
        <translation>✗ 被实验环境的规则丢弃（{0}）</translation>
    </message>
    <message>
        <source>⚠ after frames the capture lost</source>
        <translation>⚠ 在抓包丢失的帧之后</translation>
    </message>
    <message>
        <source>⋯ {0} bytes, cut by the kernel as it chose</source>
        <translation>⋯ {0} 字节，由内核自行切分</translation>
    </message>
    <message>
        <source>⋯ ACKs as the kernel chose</source>
        <translation>⋯ 内核自行决定的 ACK</translation>
    </message>
    <message>
        <source>retransmission</source>
        <translation>重传</translation>
    </message>
</context>
<context>
    <name>SocketsView</name>
    <message>
        <source>State</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Recv-Q</source>
        <translation>Recv-Q</translation>
    </message>
    <message>
        <source>Send-Q</source>
        <translation>Send-Q</translation>
    </message>
    <message>
        <source>Local Address:Port</source>
        <translation>本地地址:端口</translation>
    </message>
    <message>
        <source>Peer Address:Port</source>
        <translation>对端地址:端口</translation>
    </message>
    <message>
        <source>Timer</source>
        <translation>定时器</translation>
    </message>
    <message>
        <source>Source</source>
        <translation>来源</translation>
    </message>
    <message>
        <source>Local Port</source>
        <translation>本地端口</translation>
    </message>
    <message>
        <source>Peer Port</source>
        <translation>对端端口</translation>
    </message>
    <message>
        <source>unknown</source>
        <translation>未知</translation>
    </message>
    <message>
        <source>observed</source>
        <translation>观测</translation>
    </message>
    <message>
        <source>inferred</source>
        <translation>推断</translation>
    </message>
    <message>
        <source>traced</source>
        <translation>跟踪</translation>
    </message>
    <message>
        <source>(before the trace)</source>
        <translation>（记录之前）</translation>
    </message>
    <message>
        <source>On the server&apos;s port before the recording began (an earlier connection): the kernel observer found it at its start.</source>
        <translation>录制开始之前就已在服务器的端口上（一个更早的连接）：内核观察者在启动时发现了它。</translation>
    </message>
    <message>
        <source>No socket on the server&apos;s port at this point</source>
        <translation>此刻服务器端口上没有套接字</translation>
    </message>
    <message>
        <source>This trace has no TCP states: they were not recorded (--states off). Listed: the listening socket and the sockets the programs hold open, from their own calls; their TCP states are unknown.</source>
        <translation>这份跟踪记录没有 TCP 状态：录制时没有记录（--states off）。列出的是监听套接字，以及根据程序自身的调用推知仍打开着的套接字；它们的 TCP 状态未知。</translation>
    </message>
    <message>
        <source>No TCP state reported yet at this point of the trace. Listed: the sockets the programs hold open, from their own calls.</source>
        <translation>跟踪记录的这一刻还没有上报任何 TCP 状态。列出的是根据程序自身的调用推知仍打开着的套接字。</translation>
    </message>
    <message>
        <source>States from the segments, each change placed at its segment. ✓ or ✗: what the kernel said of it (traced: its tracepoint, every transition; observed: a sock_diag poll). Queues and timers as the kernel last reported them.</source>
        <translation>状态由报文段推出，每次变化都标在引起它的报文段处。✓ 或 ✗：内核对它的说法（跟踪：内核跟踪点，报告每一次状态转换；观测：一次 sock_diag 查询）。队列和计时器是内核最近一次报告的值。</translation>
    </message>
    <message>
        <source>States inferred from the segments or the programs&apos; own calls (the kernel was not asked): queues unknown, TIME_WAIT countdowns assume Linux&apos;s 60 s.</source>
        <translation>状态由报文段或程序自己的系统调用推断（没有询问内核）：队列未知，TIME_WAIT 倒计时按 Linux 的 60 秒计算。</translation>
    </message>
    <message>
        <source>Observed: states, queues and timers as the kernel last reported them for each socket.</source>
        <translation>观测：状态、队列和定时器均为内核最近一次为各套接字上报的值。</translation>
    </message>
    <message>
        <source>Source —: not reported (yet); the state follows from accept() or connect().</source>
        <translation>来源为 —：（尚）未上报；状态由 accept() 或 connect() 推知。</translation>
    </message>
    <message>
        <source>Every socket here is on {0}: the addresses show its ports only.</source>
        <translation>这里的每个套接字都在 {0} 上：地址一栏只显示端口。</translation>
    </message>
</context>
<context>
    <name>TimelineSlider</name>
    <message>
        <source>Marks: the engine started or restarted ({0})</source>
        <translation>刻度标记：引擎启动或重启处（{0} 处）</translation>
    </message>
    <message>
        <source>Orange bands: the capture lost {0} frames there; packets are missing in every view</source>
        <translation>橙色带：抓包在此丢失了 {0} 帧；各视图在这里都缺少数据包</translation>
    </message>
</context>
<context>
    <name>View</name>
    <message>
        <source>HTTP</source>
        <translation>HTTP</translation>
    </message>
    <message>
        <source>I/O model</source>
        <translation>I/O 模型</translation>
    </message>
    <message>
        <source>Lifecycle</source>
        <translation>生命周期</translation>
    </message>
    <message>
        <source>Plots</source>
        <translation>图表</translation>
    </message>
    <message>
        <source>Handshake and teardown</source>
        <translation>握手与挥手</translation>
    </message>
    <message>
        <source>Sockets</source>
        <translation>套接字</translation>
    </message>
    <message>
        <source>State diagram</source>
        <translation>状态图</translation>
    </message>
</context>
</TS>
