package dev.vhostappliance.block.export.nbd;

import static dev.vhostappliance.block.ExternalTools.exec;
import static dev.vhostappliance.block.ExternalTools.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.vhostappliance.block.ExternalTools;
import dev.vhostappliance.block.node.FileNode;
import dev.vhostappliance.cli.StartupException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * NBD over TLS with certificates the test makes (certtool, as QEMU's documentation does): GnuTLS clients
 * (qemu-io, qemu-img, nbdinfo) with the CA's client certificate get in; a client without TLS, with a
 * certificate of another CA, or with a name tls-authz does not allow, is refused.
 */
class NbdTlsTest {
    @TempDir
    static Path pki;
    @TempDir
    Path dir;
    private FileNode node;
    private NbdServer server;

    @BeforeAll
    static void certificates() throws Exception {
        boolean present = ExternalTools.available("certtool", "openssl", "qemu-img", "qemu-io", "nbdinfo");
        assertTrue(present || System.getenv("VHOST_E2E_REQUIRED") == null, "gnutls-bin, openssl, qemu-utils, libnbd-bin are needed");
        assumeTrue(present, "gnutls-bin, openssl, qemu-utils or libnbd-bin missing");
        ca("ca");
        ca("other-ca");
        Files.createDirectories(pki.resolve("server"));
        Files.createDirectories(pki.resolve("server-pkcs8"));
        Files.createDirectories(pki.resolve("client"));
        Files.createDirectories(pki.resolve("stranger"));
        certtool("--generate-privkey", "--outfile", pki.resolve("server/server-key.pem"));
        // the same server with a PKCS#8 key (openssl's format; certtool writes PKCS#1)
        run("openssl", "genpkey", "-algorithm", "RSA", "-out", pki.resolve("server-pkcs8/server-key.pem").toString());
        String server = "organization = Test\ncn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\n"
                + "tls_www_server\nencryption_key\nsigning_key\nexpiration_days = 30\n";
        issue("ca", "server/server-key.pem", "server/server-cert.pem", server);
        issue("ca", "server-pkcs8/server-key.pem", "server-pkcs8/server-cert.pem", server);
        String client = "country = GB\norganization = Test\ncn = client.test\ntls_www_client\nencryption_key\nsigning_key\n"
                + "expiration_days = 30\n";
        certtool("--generate-privkey", "--outfile", pki.resolve("client/client-key.pem"));
        issue("ca", "client/client-key.pem", "client/client-cert.pem", client);
        certtool("--generate-privkey", "--outfile", pki.resolve("stranger/client-key.pem"));
        issue("other-ca", "stranger/client-key.pem", "stranger/client-cert.pem", client);
        for (String d : new String[] {"server", "server-pkcs8", "client", "stranger"}) {
            Files.copy(pki.resolve("ca/ca-cert.pem"), pki.resolve(d + "/ca-cert.pem"));
        }
    }

    private static void ca(String name) throws Exception {
        Files.createDirectories(pki.resolve(name));
        certtool("--generate-privkey", "--outfile", pki.resolve(name + "/ca-key.pem"));
        Path info = Files.writeString(pki.resolve(name + ".info"), "cn = " + name + "\nca\ncert_signing_key\nexpiration_days = 30\n");
        certtool("--generate-self-signed", "--load-privkey", pki.resolve(name + "/ca-key.pem"), "--template", info,
                "--outfile", pki.resolve(name + "/ca-cert.pem"));
    }

    private static void issue(String ca, String key, String cert, String template) throws Exception {
        Path info = Files.writeString(pki.resolve(cert.replace('/', '-') + ".info"), template);
        certtool("--generate-certificate", "--load-ca-certificate", pki.resolve(ca + "/ca-cert.pem"), "--load-ca-privkey",
                pki.resolve(ca + "/ca-key.pem"), "--load-privkey", pki.resolve(key), "--template", info, "--outfile", pki.resolve(cert));
    }

    private static void certtool(Object... args) {
        String[] cmd = new String[args.length + 1];
        cmd[0] = "certtool";
        for (int i = 0; i < args.length; i++) {
            cmd[i + 1] = args[i].toString();
        }
        run(cmd);
    }

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
        }
        if (node != null) {
            node.close();
        }
    }

    private int serve(TlsCredentials tls) throws Exception {
        Path image = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(16 << 20);
        }
        node = FileNode.open("disk", image, FileNode.Options.defaults(false));
        server = NbdServer.listenInet("127.0.0.1", 0, 0);
        server.requireTls(tls);
        new NbdExport("e", "disk", null, "disk", node, true, false).addTo(server);
        server.start();
        return server.port();
    }

    private String[] qemuIo(int port, String clientDir, String... commands) {
        java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of("qemu-io", "--object",
                "tls-creds-x509,id=tls0,dir=" + pki.resolve(clientDir) + ",endpoint=client", "--image-opts",
                "driver=nbd,host=127.0.0.1,port=" + port + ",export=disk,tls-creds=tls0"));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        return cmd.toArray(String[]::new);
    }

    @Test
    void gnutlsClientsWithTheCasCertificateReadAndWrite() throws Exception {
        int port = serve(TlsCredentials.load("tls0", pki.resolve("server"), true));
        String out = run(qemuIo(port, "client", "write -P 0x3c 1M 1M", "flush", "read -P 0x3c 1M 1M"));
        assertTrue(!out.contains("failed") && out.contains("read 1048576/1048576"), out);
        String info = run("nbdinfo", "nbds://127.0.0.1:" + port + "/disk?tls-certificates=" + pki.resolve("client"));
        assertTrue(info.contains("with TLS") && info.contains("export-size: 16777216"), info);
        assertEquals(0x3c, Files.readAllBytes(dir.resolve("disk.img"))[(1 << 20) + 7]);
    }

    @Test
    void aPkcs8KeyWorksAsWell() throws Exception {
        int port = serve(TlsCredentials.load("tls0", pki.resolve("server-pkcs8"), false));
        String info = run("nbdinfo", "nbds://127.0.0.1:" + port + "/disk?tls-certificates=" + pki.resolve("client"));
        assertTrue(info.contains("with TLS"), info);
    }

    @Test
    void clientsWithoutTlsOrWithAStrangersCertificateAreRefused() throws Exception {
        int port = serve(TlsCredentials.load("tls0", pki.resolve("server"), true));
        ExternalTools.Result plain = exec("nbdinfo", "nbd://127.0.0.1:" + port + "/disk");
        assertNotEquals(0, plain.status(), plain.output());
        ExternalTools.Result stranger = exec(qemuIo(port, "stranger", "read 0 512"));
        assertTrue(stranger.status() != 0 || stranger.output().contains("failed"), stranger.output());
        try (RawNbdClient c = new RawNbdClient(dir.resolve("none"), port).greet()) {
            c.option(Nbd.OPT_LIST, new byte[0]);
            assertEquals(Nbd.REP_ERR_TLS_REQD, c.optionReply().type());
            c.option(Nbd.OPT_EXPORT_NAME, "disk".getBytes(StandardCharsets.UTF_8));
            assertTrue(c.closedByServer(), "EXPORT_NAME without TLS ends the connection");
        }
        try (RawNbdClient c = new RawNbdClient(dir.resolve("none"), port).greet()) {
            c.option(Nbd.OPT_STARTTLS, new byte[0]);
            assertEquals(Nbd.REP_ACK, c.optionReply().type());
            c.write(java.nio.ByteBuffer.wrap("this is no TLS ClientHello".getBytes(StandardCharsets.US_ASCII)));
            assertTrue(c.closedByServer(), "a failed TLS handshake ends the connection");
        }
        String good = run("nbdinfo", "nbds://127.0.0.1:" + port + "/disk?tls-certificates=" + pki.resolve("client"));
        assertTrue(good.contains("with TLS"), "the server goes on: " + good);
        assertEquals(0, server.failures());
    }

    @Test
    void tlsAuthzLetsInOnlyTheNamedClient() throws Exception {
        TlsCredentials creds = TlsCredentials.load("tls0", pki.resolve("server"), true);
        int port = serve(creds.withIdentity("CN=someone.else,O=Test,C=GB"));
        ExternalTools.Result refused = exec("nbdinfo", "nbds://127.0.0.1:" + port + "/disk?tls-certificates=" + pki.resolve("client"));
        assertNotEquals(0, refused.status(), refused.output());
        server.close();
        node.close();
        port = serve(creds.withIdentity("CN=client.test, O=Test, C=GB"));
        String in = run("nbdinfo", "nbds://127.0.0.1:" + port + "/disk?tls-certificates=" + pki.resolve("client"));
        assertTrue(in.contains("with TLS"), in);
        assertThrows(StartupException.class, () -> TlsCredentials.load("t", pki.resolve("server"), false).withIdentity("CN=x"),
                "an identity needs the peer's certificate");
        assertThrows(StartupException.class, () -> TlsCredentials.load("t", pki.resolve("client"), true),
                "a directory without server-cert.pem");
    }
}
