; A tiny guest for the QEMU display tests: a 512-byte boot sector (nasm -f bin).
;
; It switches to VGA mode 13h (320x200, 256 colours) and draws a known pattern: eight
; vertical bars of the default palette's colours 1..8 (40 pixels wide each) over rows 0..99.
; Each key typed is echoed twice:
;   - as its ASCII code in binary: eight 8x8 blocks on rows 120..127 from x = 0, most
;     significant bit first, colour 15 (white) for a one and 0 (black) for a zero;
;   - as text through the BIOS teletype (row 20 onwards), for a person watching.
; Enter switches to VGA mode 12h (640x480, 16 colours; QEMU shows mode 13h doubled, as
; 640x400) and prints "MODE 12H"; keys typed after that are echoed by the teletype.
bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    sti
    mov ax, 0x0013          ; mode 13h
    int 0x10
    mov ax, 0xa000
    mov es, ax
    ; bars: for y in 0..99, x in 0..319: colour = x / 40 + 1
    xor di, di
    mov dx, 100
.row:
    mov cx, 0
.col:
    mov ax, cx
    mov bl, 40
    div bl
    inc al
    stosb
    inc cx
    cmp cx, 320
    jne .col
    dec dx
    jnz .row
    ; teletype cursor to row 20
    mov ah, 0x02
    xor bh, bh
    mov dx, 0x1400
    int 0x10

graphic_keys:
    xor ah, ah
    int 0x16                ; wait for a key: AL = ASCII
    cmp al, 0x0d
    je mode_12h
    push ax
    call bits_out
    pop ax
    mov ah, 0x0e
    mov bx, 0x000f
    int 0x10
    jmp graphic_keys

; draw AL's eight bits as 8x8 blocks on rows 120..127
bits_out:
    mov bl, al
    mov di, 120 * 320
    mov si, 8               ; bits left
.bit:
    mov al, 0
    shl bl, 1
    jnc .zero
    mov al, 15
.zero:
    mov dx, 8               ; rows of the block
    push di
.brow:
    mov cx, 8
    rep stosb
    add di, 320 - 8
    dec dx
    jnz .brow
    pop di
    add di, 8
    dec si
    jnz .bit
    ret

mode_12h:
    mov ax, 0x0012
    int 0x10
    mov si, text_msg
.msg:
    lodsb
    test al, al
    jz mode_12h_keys
    mov ah, 0x0e
    mov bx, 0x000f
    int 0x10
    jmp .msg
mode_12h_keys:
    xor ah, ah
    int 0x16
    mov ah, 0x0e
    mov bx, 0x000f
    int 0x10
    jmp mode_12h_keys

text_msg: db "MODE 12H", 13, 10, 0

times 510 - ($ - $$) db 0
dw 0xaa55
